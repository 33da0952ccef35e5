//! Server bench (being written): throughput, latency, gateway overhead, health rps, idle RSS.
fn main() {}
