use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed pipe (`radar lake ls | head`) ends the process quietly, as for
    // other command-line tools, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at startup, before
    // any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    radar::cli::main()
}
