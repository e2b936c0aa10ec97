use super::*;

const SHARED: Mode = Mode::Shared;
const DEDICATED: Mode = Mode::Dedicated { window_bits: 12 };

fn response(headers: &[&str], mode: Mode) -> Option<String> {
    negotiate(headers.iter().copied(), mode).map(|a| a.response)
}

#[test]
fn a_plain_offer_is_accepted_without_context_in_shared_mode() {
    // What WeChat and most clients send.
    let a = negotiate(["permessage-deflate"], SHARED).unwrap();
    assert_eq!(
        a.response,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert_eq!((a.server_window_bits, a.server_takeover), (15, false));
    assert_eq!((a.client_window_bits, a.client_takeover), (15, false));
}

#[test]
fn browsers_offer_is_accepted_and_client_max_window_bits_is_never_answered_unasked() {
    // Chromium's offer.
    let chromium = "permessage-deflate; client_max_window_bits";
    assert_eq!(
        response(&[chromium], SHARED).unwrap(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    // Firefox and Safari send the same; without `client_max_window_bits`, dedicated mode cannot limit it.
    let a = negotiate(["permessage-deflate"], DEDICATED).unwrap();
    assert!(
        !a.response.contains("client_max_window_bits"),
        "{}",
        a.response
    );
    assert_eq!(a.client_window_bits, 15);
    let a = negotiate([chromium], DEDICATED).unwrap();
    assert_eq!(a.response, "permessage-deflate; client_max_window_bits=12");
    assert_eq!((a.server_window_bits, a.client_window_bits), (12, 12));
    assert!(a.server_takeover && a.client_takeover);
}

#[test]
fn the_first_acceptable_of_several_offers_and_headers_wins() {
    // A bad first offer is skipped, in one header or across two.
    let bad = "permessage-deflate; server_max_window_bits=8";
    let good = "permessage-deflate; server_max_window_bits=10";
    let want = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10";
    assert_eq!(
        response(&[&format!("{bad}, {good}")], SHARED).unwrap(),
        want
    );
    assert_eq!(response(&[bad, good], SHARED).unwrap(), want);
    assert_eq!(
        negotiate([bad, good], SHARED).unwrap().server_window_bits,
        10
    );
    // Other extensions around it do not matter.
    assert!(response(&["x-webkit-deflate-frame, permessage-deflate"], SHARED).is_some());
}

#[test]
fn quoted_values_and_any_case_are_read() {
    let a = negotiate(
        ["Permessage-Deflate; Server_Max_Window_Bits=\"14\"; client_max_window_bits=\"9\""],
        DEDICATED,
    )
    .unwrap();
    // The route's 12 bits are below the 14 the client allows; the client's 9 are below the route's.
    assert_eq!((a.server_window_bits, a.client_window_bits), (12, 9));
    assert_eq!(
        a.response,
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9"
    );
    // A comma inside quotes does not split the list.
    assert!(
        response(
            &["permessage-deflate; server_max_window_bits=\"1,2\""],
            SHARED
        )
        .is_none()
    );
}

#[test]
fn bad_offers_are_declined_never_failed() {
    for offer in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; mystery",
        "deflate-frame",
        "",
    ] {
        assert_eq!(response(&[offer], SHARED), None, "{offer}");
        assert_eq!(response(&[offer], DEDICATED), None, "{offer}");
    }
}

#[test]
fn the_clients_no_context_takeover_wishes_are_kept_in_dedicated_mode() {
    let a = negotiate(
        ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
        DEDICATED,
    )
    .unwrap();
    assert_eq!(
        a.response,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert!(!a.server_takeover && !a.client_takeover);
}

#[test]
fn safari_15_0_to_15_3_is_recognised_and_nothing_else() {
    let safari = |v: &str| {
        format!(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15"
        )
    };
    for v in ["15.0", "15.1", "15.2", "15.3", "15.3.1"] {
        assert!(is_broken_safari(&safari(v)), "{v}");
    }
    for v in ["14.1", "15.4", "16.0", "15"] {
        assert!(!is_broken_safari(&safari(v)), "{v}");
    }
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 15_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.2 Mobile/15E148 Safari/604.1";
    assert!(is_broken_safari(iphone));
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Version/15.1";
    assert!(!is_broken_safari(chrome));
    assert!(!is_broken_safari("MicroMessenger/8.0 NetType/WIFI"));
}
