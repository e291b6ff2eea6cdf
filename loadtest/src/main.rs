//! The bundled MCP load generator; its own issue fills it in. Until then it says so and exits non-zero.

fn main() {
    eprintln!("loadtest: not built yet (see the load-generator issue)");
    std::process::exit(2);
}
