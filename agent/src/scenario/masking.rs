//! Variable values out of error text: a VU's variables hold values extracted from responses
//! (session tokens, ids), feeder rows and secrets, and a message about a request built from them
//! may be logged, sent to the coordinator and shown to anyone who reads the run. Values of four
//! characters or more are shown as `***`; shorter ones would mask ordinary text and hide little.

use herd_protocol::plan::Redactor;

/// Shortest variable value masked in error text.
const MIN_MASKED: usize = 4;

/// `text` with every variable value in `vars` (of [`MIN_MASKED`] characters or more) masked.
pub(crate) fn mask_values(text: &str, vars: &[String]) -> String {
    Redactor::new(
        vars.iter()
            .map(String::as_str)
            .filter(|v| v.chars().count() >= MIN_MASKED),
    )
    .redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracted_values_are_masked_in_error_text() {
        let vars = vec!["tok-extracted-77".to_string(), "42".to_string()];
        assert_eq!(
            mask_values("invalid URL http://h/a/tok-extracted-77?n=42", &vars),
            "invalid URL http://h/a/***?n=42"
        );
        assert_eq!(mask_values("nothing to hide", &vars), "nothing to hide");
    }
}
