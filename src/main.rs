// The tool allocates a great many small strings and vectors from two threads at once; mimalloc
// serves those faster than the C library's malloc (tree-sitter's own allocations go there too:
// see `parse::python_parser`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fix_migrations::cli::main()
}
