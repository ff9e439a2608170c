use std::process::ExitCode;

fn main() -> ExitCode {
    radar::cli::main()
}
