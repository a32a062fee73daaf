//! The `electrum-spv` command line.

fn main() {
    eprintln!("electrum-spv: command line not built yet");
    std::process::exit(2);
}
