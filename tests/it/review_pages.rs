//! The review pages built for deciding, over real HTTP against the real
//! binary (no JavaScript): a refused decision stays on its page with the
//! reason and what was typed, the next open exception is offered, people
//! read labels and times (the JSON API keeps its codes), and the one script
//! is a same-origin file. (Beside `web.rs`, which holds sessions, CSRF and
//! roles, so that neither file grows past a few hundred lines.)

use crate::review_server::{CLINICIAN, Review};

/// The text a reader sees: the page without its tags (attributes, where
/// codes may stay for scripts and tests, go with them).
fn visible(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The value of the input with this id.
fn input_value(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_end = at + html[at..].find('>')?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    tag[v..].split('"').next().map(str::to_string)
}

#[tokio::test]
async fn a_refused_map_stays_on_the_page_with_the_reason_and_the_input_kept() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let csrf = r.csrf(&cookie).await;
    // An NDC that reads, but that the dictionary does not hold: the store refuses.
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[
                ("action", "map"),
                ("ndc", "12345-6789-01"),
                ("note", "checked the label"),
                ("kind", "unmapped_ndc"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("id=\"decide\""), "the decision panel again");
    assert!(a.body.contains("id=\"refused\""), "{}", a.body);
    assert!(
        visible(&a.body).contains("NDC 12345-6789-01 is not in the drug dictionary"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("Cannot do that"), "no dead end");
    assert_eq!(
        input_value(&a.body, "map-ndc").as_deref(),
        Some("12345-6789-01")
    );
    assert_eq!(
        input_value(&a.body, "map-note").as_deref(),
        Some("checked the label")
    );
    assert!(
        a.body.contains("name=\"kind\" value=\"unmapped_ndc\""),
        "the queue filter is carried on"
    );
    // Text that is no NDC at all is refused on the same page, as typed.
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[("action", "map"), ("ndc", "12-34"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(visible(&a.body).contains("12-34:"), "{}", a.body);
    assert_eq!(input_value(&a.body, "map-ndc").as_deref(), Some("12-34"));
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM exceptions WHERE id = 2 AND state = 'open'"),
        1,
        "nothing was decided"
    );
}

#[tokio::test]
async fn the_next_open_exception_is_offered_on_the_page_and_after_a_decision() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let page = r.get("/exceptions/2?state=open", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("id=\"next-patient\" href=\"/exceptions/1?state=open\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"next-queue\" href=\"/exceptions/1?state=open\"")
    );
    // The queue's links carry its filter to the exception.
    let queue = r.get("/queue?kind=unmapped_ndc", Some(&cookie)).await;
    assert!(
        queue
            .body
            .contains("href=\"/exceptions/2?kind=unmapped_ndc\""),
        "{}",
        queue.body
    );
    // Within that filter no other exception is open; within the patient one is.
    let page = r
        .get("/exceptions/2?kind=unmapped_ndc", Some(&cookie))
        .await;
    assert!(!page.body.contains("id=\"next-queue\""));
    assert!(page.body.contains("id=\"next-patient\""));

    // The queue goes newest first, and round again from the oldest.
    let page = r.get("/exceptions/1", Some(&cookie)).await;
    assert!(
        page.body
            .contains("id=\"next-patient\" href=\"/exceptions/2?\""),
        "{}",
        page.body
    );
    // A dictionary search sends the page to its results.
    let found = r.get("/exceptions/2?q=cozaar", Some(&cookie)).await;
    assert!(found.body.contains("action=\"/exceptions/2#results\""));
    assert!(
        found.body.contains("<section id=\"results\""),
        "{}",
        found.body
    );
    let csrf = r.csrf(&cookie).await;
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[
                ("action", "map"),
                ("ndc", "0006-0952-31"),
                ("state", "open"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let to = a.location().expect("a redirect").to_string();
    assert_eq!(to, "/exceptions/2?done=resolve&state=open");
    let after = r.get(&to, Some(&cookie)).await;
    assert!(
        after
            .body
            .contains("class=\"next-after\" href=\"/exceptions/1?state=open\""),
        "{}",
        after.body
    );
    assert!(visible(&after.body).contains("Go to the next open exception"));
}

#[tokio::test]
async fn people_read_labels_and_times_and_the_api_keeps_its_codes() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let csrf = r.csrf(&cookie).await;
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[("action", "map"), ("ndc", "00006095231"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let raw_codes = [
        "unmapped_ndc",
        "needs_review",
        "exception.map",
        "\"exception\":",
    ];
    for (path, labels) in [
        (
            "/queue?state=all",
            &["Unmapped NDC", "Duplicate", "Resolved", "Open"][..],
        ),
        (
            "/exceptions/2",
            &["Unmapped NDC", "Resolved", "Mapped to NDC 00006-0952-31"][..],
        ),
        (
            "/patients/review-1",
            &[
                "Needs review",
                "dr.lee mapped the item of exception #2 (Unmapped NDC) to NDC 00006-0952-31",
            ][..],
        ),
    ] {
        let page = r.get(path, Some(&cookie)).await;
        assert_eq!(page.status, 200, "{path}");
        let text = visible(&page.body);
        for l in labels {
            assert!(text.contains(l), "{path}: no {l:?} in {text}");
        }
        // Raw JSON is folded in <details>, so it is not counted as read text
        // here; everything outside it must use words.
        let outside_details: String = page
            .body
            .split("<details")
            .enumerate()
            .map(|(n, part)| {
                if n == 0 {
                    part
                } else {
                    part.split_once("</details>").map_or("", |(_, rest)| rest)
                }
            })
            .collect();
        let text = visible(&outside_details);
        for code in raw_codes {
            assert!(!text.contains(code), "{path}: raw {code:?} in {text}");
        }
        // Times: a machine value in UTC without milliseconds, the UTC text
        // in the title, and readable UTC text for a browser without scripts.
        let at = page
            .body
            .find("<time datetime=\"")
            .unwrap_or_else(|| panic!("{path}: no <time>"));
        let tag = &page.body[at..at + page.body[at..].find("</time>").expect("closed")];
        let datetime = tag[16..].split('"').next().expect("datetime");
        assert!(
            datetime.len() == 20 && datetime.ends_with('Z') && datetime.as_bytes()[10] == b'T',
            "{path}: {tag}"
        );
        assert!(
            tag.contains(" UTC\">") && tag.ends_with(" UTC"),
            "{path}: {tag}"
        );
        assert!(
            !text.contains(".000Z") && !visible(tag).contains('.'),
            "{path}: {tag}"
        );
    }
    // The JSON API keeps its codes.
    let token = r.token(CLINICIAN.0);
    let api = r
        .api("GET", "/exceptions/2", Some(&token), None)
        .await
        .json();
    assert_eq!(api["exception"]["kind"], "unmapped_ndc");
    assert_eq!(api["exception"]["state"], "resolved");
}

#[tokio::test]
async fn the_time_script_is_a_same_origin_file_served_without_a_session() {
    let r = Review::start();
    let a = r.get("/assets/review.js", None).await;
    assert_eq!(a.status, 200);
    assert!(
        a.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/javascript")),
        "{:?}",
        a.headers
    );
    assert!(a.body.contains("time[datetime]"));
}
