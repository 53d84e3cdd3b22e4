//! Resolving `$ref`s: local files only, never the network.

use std::error::Error;

use jsonschema::{Retrieve, Uri};
use serde_json::Value;

/// Reads `file://` references from disk and refuses every other scheme.
pub(crate) struct LocalOnly;

impl Retrieve for LocalOnly {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn Error + Send + Sync>> {
        let text = uri.as_str();
        if uri.scheme().as_str() != "file" {
            return Err(format!(
                "remote $ref {text} refused: eventbus never fetches schemas over the network; save it next to the schema file and refer to it by a relative path"
            )
            .into());
        }
        let url = url::Url::parse(text).map_err(|e| format!("$ref {text}: {e}"))?;
        let path = url
            .to_file_path()
            .map_err(|()| format!("$ref {text}: not a local file path"))?;
        let body = std::fs::read(&path)
            .map_err(|e| format!("$ref {text} does not resolve: {}: {e}", path.display()))?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("$ref {text}: {} is not JSON: {e}", path.display()).into())
    }
}
