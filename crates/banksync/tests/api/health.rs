//! Item health through reset_login and repair by update-mode Link.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::sync::wait_for_first_sync;

#[tokio::test]
async fn reset_login_makes_the_item_login_required_and_update_mode_link_repairs_it() {
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;

    // The bank asks the user to log in again: the sync fails with a 409 and the Item says why.
    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    let failed = app.post_fresh_sync(&item_id).await.expect_error(409, "item_login_required");
    assert!(!failed["error"]["message"].as_str().unwrap().is_empty());
    let item = app.get_item(&item_id).await.expect(200);
    assert_eq!(item["health"]["status"], "login_required", "{item}");
    assert_eq!(item["health"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(item["health"]["needs_reconnect"], true);
    assert!(item["health"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{item}");
    let runs = item["recent_sync_runs"].as_array().unwrap();
    assert_eq!(runs[0]["status"], "failed", "{item}");

    // Update mode: a link token for this Item, Link with the same login, then /repaired.
    let token = app.post_link_token(Some(&item_id)).await.expect(200);
    assert_eq!(token["item_id"], item_id.as_str());
    let (public_token, _) = app.complete_link(token["link_token"].as_str().unwrap(), 0).await;
    assert!(public_token.starts_with("public-"));
    let repaired = app.post_repaired(&item_id).await.expect(200);
    assert_eq!(repaired["health"]["status"], "good");

    app.post_fresh_sync(&item_id).await.expect(200);
    let item = app.get_item(&item_id).await.expect(200);
    assert_eq!(item["health"]["status"], "good", "{item}");
    assert!(item["health"]["error_code"].is_null());
}
