// A pm2 ecosystem file as JavaScript: it computes, so clusterrun init loads
// it with node.
const base = { script: "server.js", exec_mode: "cluster" };

module.exports = {
  apps: [
    { ...base, name: "api", instances: 2, env: { PORT: 3000 + 1 } },
    { name: "queue", script: "queue.py", interpreter: "python3", kill_timeout: 1500 },
  ],
};
