package control

// maxSocketPath is the longest path a unix socket may have: sun_path holds
// 108 bytes, with the terminating NUL.
const maxSocketPath = 107
