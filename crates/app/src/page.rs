//! Keyset paging, as every list pages (API and CLI alike): a page holds at most `limit` items
//! in key order; its cursor is the key (an id) of its last item written as a string, and the
//! next page starts after it (`cursor` in the API, `--cursor` on the command line, either
//! side's cursor accepted by the other). Only a full page has a next one.

/// The cursor of the page after `items` (a page of at most `limit`), `key` reading an item's
/// id: `None` when the page is not full (the last page).
pub fn next_cursor<T>(items: &[T], limit: u32, key: impl Fn(&T) -> i64) -> Option<String> {
    if items.len() as u64 != u64::from(limit) {
        return None;
    }
    items.last().map(|item| key(item).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_has_the_next_cursor_a_short_one_none() {
        assert_eq!(next_cursor(&[3_i64, 8], 2, |id| *id), Some("8".to_owned()));
        assert_eq!(next_cursor(&[3_i64], 2, |id| *id), None, "the last page");
        assert_eq!(next_cursor::<i64>(&[], 2, |id| *id), None);
    }
}
