use super::*;

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn the_full_2019_snapshot_loads_without_a_problem() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let dir = std::path::Path::new(&dir);
    let product_bytes = std::fs::read(dir.join("product.txt")).expect("read product.txt");
    let package_bytes = std::fs::read(dir.join("package.txt")).expect("read package.txt");
    let started = std::time::Instant::now();
    let (products, product_problems) =
        read_products(&product_bytes).expect("product.txt has its columns");
    let (packages, package_problems) =
        read_packages(&package_bytes).expect("package.txt has its columns");
    let elapsed = started.elapsed();
    eprintln!(
        "read {} products and {} packages in {elapsed:?}",
        products.len(),
        packages.len()
    );
    for p in product_problems.iter().chain(&package_problems).take(20) {
        eprintln!("{}:{}: {}", p.file, p.line, p.detail);
    }
    assert_eq!(product_problems, vec![]);
    assert_eq!(package_problems, vec![]);
    assert_eq!(products.len(), 128_241);
    assert_eq!(packages.len(), 243_960);
    assert_eq!(products.iter().filter(|p| p.excluded).count(), 31_654);
}
