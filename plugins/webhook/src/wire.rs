//! The webhook's wire protocol — public API, fixed as documented in the README ("Talk to your backend"): the JSON
//! the gateway POSTs to the backend, and the JSON answers it reads back. Connection ids are decimal strings, since
//! JavaScript backends lose precision on 64-bit numbers.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /connect`.
#[derive(Serialize)]
pub struct Connect<'a> {
    pub connection: String,
    pub path: &'a str,
    pub query: &'a str,
    /// Lower-case names; a repeated header's values joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub remote_address: &'a str,
}

/// `POST /message`: exactly one of `text` and `binary` (base64).
#[derive(Serialize)]
pub struct MessageEvent<'a> {
    pub connection: String,
    pub uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

/// `POST /disconnect`.
#[derive(Serialize)]
pub struct Disconnect<'a> {
    pub connection: String,
    pub uid: Option<&'a str>,
    pub code: u16,
    pub reason: &'a str,
}

/// A 2xx answer to `/connect`: all optional.
#[derive(Deserialize, Default, Debug, PartialEq)]
pub struct Accepted {
    pub uid: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub reply: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Publish {
    pub group: String,
    pub text: String,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct ToUser {
    pub uid: String,
    pub text: String,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Close {
    pub code: u16,
    #[serde(default)]
    pub reason: String,
}

/// A 2xx answer to `/message`: the actions, applied in this order. Unknown keys are ignored.
#[derive(Deserialize, Default, Debug, PartialEq)]
pub struct Actions {
    pub reply: Option<String>,
    pub reply_binary: Option<String>,
    #[serde(default)]
    pub publish: Vec<Publish>,
    #[serde(default)]
    pub send_to_user: Vec<ToUser>,
    #[serde(default)]
    pub join: Vec<String>,
    #[serde(default)]
    pub leave: Vec<String>,
    pub close: Option<Close>,
}

/// The most entries one action list may hold, and the most bytes one text may have: an answer past them is refused
/// whole (nothing applies), so a confused backend cannot make one message fan out without bound.
pub const MAX_ENTRIES: usize = 100;
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Actions checked whole before any applies, with `reply_binary` decoded.
#[derive(Debug, PartialEq)]
pub struct Checked {
    pub actions: Actions,
    pub reply_binary: Option<Vec<u8>>,
}

/// Reads a `/message` answer's body: empty means no action. Every reason to refuse it is found here, so that a
/// refused answer applies nothing.
pub fn parse_actions(body: &[u8]) -> Result<Checked, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Checked {
            actions: Actions::default(),
            reply_binary: None,
        });
    }
    let actions: Actions =
        serde_json::from_slice(body).map_err(|e| format!("malformed answer: {e}"))?;
    let lists = [
        actions.publish.len(),
        actions.send_to_user.len(),
        actions.join.len(),
        actions.leave.len(),
    ];
    if lists.iter().any(|&n| n > MAX_ENTRIES) {
        return Err(format!("an action lists more than {MAX_ENTRIES} entries"));
    }
    let texts = actions
        .reply
        .iter()
        .chain(actions.reply_binary.iter())
        .chain(actions.publish.iter().map(|p| &p.text))
        .chain(actions.send_to_user.iter().map(|u| &u.text));
    if texts.into_iter().any(|t| t.len() > MAX_TEXT_BYTES) {
        return Err(format!("an action's text is over {MAX_TEXT_BYTES} bytes"));
    }
    if let Some(close) = &actions.close {
        if !matches!(close.code, 1000..=1003 | 1007..=1011 | 3000..=4999) {
            return Err(format!(
                "close code {} may not be sent by a server",
                close.code
            ));
        }
        if close.reason.len() > 123 {
            return Err("close reason over 123 bytes".into());
        }
    }
    let reply_binary = match &actions.reply_binary {
        Some(encoded) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("reply_binary is not base64: {e}"))?,
        ),
        None => None,
    };
    Ok(Checked {
        actions,
        reply_binary,
    })
}

/// Reads a 2xx `/connect` answer's body: empty means accept with nothing more.
pub fn parse_accepted(body: &[u8]) -> Result<Accepted, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Accepted::default());
    }
    let accepted: Accepted =
        serde_json::from_slice(body).map_err(|e| format!("malformed answer: {e}"))?;
    if accepted.groups.len() > MAX_ENTRIES {
        return Err(format!("`groups` lists more than {MAX_ENTRIES}"));
    }
    Ok(accepted)
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_refused_whole_for_any_bad_part() {
        assert_eq!(parse_actions(b"").unwrap().actions, Actions::default());
        assert!(parse_actions(b"{\"reply\": 7}").is_err());
        assert!(parse_actions(b"not json").is_err());
        assert!(parse_actions(br#"{"reply":"ok","close":{"code":1005}}"#).is_err());
        assert!(parse_actions(br#"{"reply_binary":"%%%"}"#).is_err());
        let many = format!("{{\"join\": {:?}}}", vec!["g"; MAX_ENTRIES + 1]);
        assert!(parse_actions(many.as_bytes()).is_err());
        let ok =
            parse_actions(br#"{"reply":"ok","reply_binary":"AAE=","future_action":1}"#).unwrap();
        assert_eq!(ok.reply_binary, Some(vec![0, 1]));
        assert_eq!(ok.actions.reply.as_deref(), Some("ok"));
    }
}
