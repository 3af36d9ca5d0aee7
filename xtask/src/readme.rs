//! The generated blocks of the README: the lines between `<!-- name -->` and `<!-- /name -->`.

use std::fs;
use std::path::Path;

/// Replaces block `name` of the repository's README with `content`.
pub fn update(root: &Path, name: &str, content: &str) -> Result<(), String> {
    let readme = root.join("README.md");
    let text = fs::read_to_string(&readme).map_err(|e| format!("cannot read README.md: {e}"))?;
    let text = replace_block(&text, name, content)?;
    fs::write(&readme, text).map_err(|e| format!("cannot write README.md: {e}"))
}

/// `text` with the lines between `<!-- name -->` and `<!-- /name -->` replaced by `content`.
fn replace_block(text: &str, name: &str, content: &str) -> Result<String, String> {
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = text
        .find(&open)
        .ok_or_else(|| format!("no `{open}` in README.md"))?
        + open.len();
    let end = text[start..]
        .find(&close)
        .ok_or_else(|| format!("no `{close}` in README.md"))?
        + start;
    Ok(format!("{}{content}{}", &text[..start], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::replace_block;

    #[test]
    fn a_block_is_replaced_between_its_markers_only() {
        let text = "a\n<!-- t -->\nold\n<!-- /t -->\nb\n";
        assert_eq!(
            replace_block(text, "t", "new\n").unwrap(),
            "a\n<!-- t -->\nnew\n<!-- /t -->\nb\n"
        );
        assert!(replace_block(text, "u", "x").is_err());
    }
}
