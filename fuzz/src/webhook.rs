//! The webhook plugin's reading of its backend's answers: what a backend (or whatever answers at its address)
//! sends back is refused whole, or within the bounds that keep one message from fanning out without bound.

use webhook::wire::{MAX_ENTRIES, MAX_TEXT_BYTES, parse_accepted, parse_actions};

/// `data[0]` even: `data[1..]` is an answer to `/message`; odd: to `/connect`.
pub fn webhook(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which % 2 == 1 {
        if let Ok(accepted) = parse_accepted(body) {
            assert!(accepted.groups.len() <= MAX_ENTRIES);
        }
        return;
    }
    let Ok(checked) = parse_actions(body) else {
        return;
    };
    let actions = &checked.actions;
    for len in [
        actions.publish.len(),
        actions.send_to_user.len(),
        actions.join.len(),
        actions.leave.len(),
    ] {
        assert!(len <= MAX_ENTRIES, "an action list of {len} taken");
    }
    let texts = actions
        .reply
        .iter()
        .chain(actions.publish.iter().map(|p| &p.text))
        .chain(actions.send_to_user.iter().map(|u| &u.text));
    for text in texts {
        assert!(
            text.len() <= MAX_TEXT_BYTES,
            "a text of {} bytes taken",
            text.len()
        );
    }
    if let Some(bytes) = &checked.reply_binary {
        assert!(
            bytes.len() <= MAX_TEXT_BYTES,
            "a binary reply of {} bytes taken",
            bytes.len()
        );
    }
    if let Some(close) = &actions.close {
        assert!(
            matches!(close.code, 1000..=1003 | 1007..=1011 | 3000..=4999),
            "close code {}",
            close.code
        );
        assert!(
            close.reason.len() <= 123,
            "a close reason of {} bytes",
            close.reason.len()
        );
    }
}
