//! Compile-time behaviour of `#[def_percpu]`: misuse is a clear error at the user's code, and the
//! supported spellings compile.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
