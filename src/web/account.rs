//! The signed-in part of every page's header: who is signed in, and the logout form with
//! the session's token. It is the same on every page of a session, and Tera rendering it
//! on every request cost about as much as reading the session itself, so each instance
//! renders it once per session and keeps it for the session's idle time.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::auth::session::Session;

/// Sessions whose block one instance keeps: about 1 KB each.
const KEPT_SESSIONS: u64 = 10_000;
/// A block not used for the default idle timeout belongs to a session that has ended.
const KEPT_IDLE: Duration = Duration::from_secs(crate::auth::session::IDLE_TIMEOUT_SECS as u64);

/// The rendered blocks of recent sessions, by session id.
#[derive(Clone)]
pub struct AccountBlocks(Cache<String, Arc<Block>>);

/// One session's block, with the name and e-mail it shows: a renewal may bring new ones.
struct Block {
    name: Option<String>,
    email: Option<String>,
    html: Arc<str>,
}

impl Default for AccountBlocks {
    fn default() -> Self {
        AccountBlocks(Cache::builder().max_capacity(KEPT_SESSIONS).time_to_idle(KEPT_IDLE).build())
    }
}

impl AccountBlocks {
    /// The block of `session`: the one kept, or what `render` makes of it (kept then).
    /// `None` when rendering fails.
    pub fn of(&self, session: &Session, render: impl FnOnce() -> Option<String>) -> Option<Arc<str>> {
        if let Some(block) = self.0.get(session.sid.as_str()) {
            if block.name == session.name && block.email == session.email {
                return Some(block.html.clone());
            }
        }
        let html: Arc<str> = render()?.into();
        let block = Block { name: session.name.clone(), email: session.email.clone(), html: html.clone() };
        self.0.insert(session.sid.clone(), Arc::new(block));
        Some(html)
    }

    /// Forgets every block (the templates were reloaded).
    pub fn clear(&self) {
        self.0.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appid::Verified;
    use crate::secret::AccessToken;

    fn token(value: &str) -> AccessToken {
        AccessToken::new(value.to_string())
    }

    #[test]
    fn a_block_is_rendered_once_per_session_and_again_when_the_name_changes() {
        let blocks = AccountBlocks::default();
        let ann = Session::new(&Verified::for_test("sub-1", Some("Ann"), None), token("a"), 0);
        let mut renders = 0;
        for _ in 0..3 {
            let block = blocks.of(&ann, || {
                renders += 1;
                Some(format!("Ann, render {renders}"))
            });
            assert_eq!(block.as_deref(), Some("Ann, render 1"));
        }
        assert_eq!(renders, 1, "kept after the first page");
        // A renewal whose id_token brings another name: the header shows it.
        let renamed = ann.renewed(token("b"), None, Some(&Verified::for_test("sub-1", Some("Bea"), None)));
        assert_eq!(blocks.of(&renamed, || Some("Bea".into())).as_deref(), Some("Bea"));
        // Another session of the same user has a block of its own (its own logout token).
        let other = Session::new(&Verified::for_test("sub-1", Some("Bea"), None), token("c"), 0);
        assert_eq!(blocks.of(&other, || Some("other".into())).as_deref(), Some("other"));
        assert_eq!(blocks.of(&renamed, || None).as_deref(), Some("Bea"));
    }
}
