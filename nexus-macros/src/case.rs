//! Identifier case conversion for derived names.

/// `WithdrawalRequested` → `withdrawal_requested`, `HTTPFailed` → `http_failed`.
pub(crate) fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn splits_words_and_acronyms() {
        assert_eq!(snake_case("Deposited"), "deposited");
        assert_eq!(snake_case("WithdrawalRequested"), "withdrawal_requested");
        assert_eq!(snake_case("HTTPFailed"), "http_failed");
        assert_eq!(snake_case("Seat2Reserved"), "seat2_reserved");
        assert_eq!(snake_case("already_snake"), "already_snake");
    }
}
