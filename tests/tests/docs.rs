//! The README stays true to the code.

#[test]
fn the_readme_lists_every_variable_as_the_code_defines_it() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&bus_config::markdown_table()),
        "the README's variable table differs from bus_config::markdown_table(): regenerate it"
    );
}

#[test]
fn the_readme_gives_the_commands_ci_runs() {
    let readme = include_str!("../../README.md");
    let ci = include_str!("../../.ci/run");
    assert!(readme.contains("cargo xtask ci"));
    assert!(
        ci.lines().any(|l| l.trim() == "cargo xtask ci"),
        "CI must run the README's test command"
    );
    assert!(readme.contains("cargo xtask run"));
}
