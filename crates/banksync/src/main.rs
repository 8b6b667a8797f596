fn main() {
    banksync::telemetry::init();
    eprintln!("banksync: the command-line interface is being assembled; see README.md");
    std::process::exit(2);
}
