fn main() -> std::process::ExitCode {
    fix_migrations::cli::main()
}
