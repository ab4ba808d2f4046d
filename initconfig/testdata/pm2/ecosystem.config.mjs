// An ES module: export default, which node cannot require().
export default {
  apps: [{ name: "esm", script: "server.mjs", instances: 1 }],
};
