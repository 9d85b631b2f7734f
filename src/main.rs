// The tool allocates a great many small strings and vectors from two threads at once, and
// tree-sitter a great many nodes: mimalloc serves both faster than the C library's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fix_migrations::parse::use_mimalloc_for_tree_sitter();
    fix_migrations::cli::main()
}
