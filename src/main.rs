fn main() {
    println!("fix-migrations");
}
