use clap::Parser;

fn main() {
    latentlab::backend::tune_allocator();
    let cli = latentlab::cli::Cli::parse();
    if let Err(e) = latentlab::cli::run(cli) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
