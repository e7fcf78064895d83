//! Typed per-route requirements: a route states in its signature what it needs, and the
//! compiler keeps the statement and the check together.
//!
//! - [`AuthorizedUser`]: logged in with any role (the Flask pattern).
//! - [`Authorized<R>`]: logged in, any role, and the [`Requirement`] `R`: a role declared
//!   with [`role!`](crate::role), a scope declared with [`scope!`](crate::scope), or
//!   [`AnyOf`] / [`AllOf`] of a tuple of requirements.
//! - [`Bearer<R>`](super::bearer::Bearer): the same for API clients that send an access
//!   token in `Authorization: Bearer …`.
//!
//! `Authorized<R>` reuses the `AuthorizedUser` decision cached on the request: checking a
//! requirement never calls the provider again. Not logged in → 401 (the login redirect for
//! browsers), logged in without what `R` asks for → 403.
//!
//! ```
//! use rocket_appid::{role, scope, AllOf, AnyOf, Authorized};
//!
//! role!(pub Auditor = "auditor");
//! scope!(pub ReadReports = "read:reports");
//!
//! #[rocket::get("/reports")]
//! fn reports(user: Authorized<AnyOf<(Auditor, ReadReports)>>) -> String {
//!     format!("reports for {}", user.sub)
//! }
//!
//! #[rocket::get("/reports/delete")]
//! fn delete(user: Authorized<AllOf<(rocket_appid::Admin, ReadReports)>>) -> String {
//!     format!("{} may delete", user.sub)
//! }
//! # let _ = rocket::routes![reports, delete];
//! ```

use std::marker::PhantomData;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};

use super::guard::{AuthError, AuthorizedUser, Viewer};
use crate::appid::AppId;

/// What a route needs from a logged-in user (who already has at least one role).
pub trait Requirement: Send + Sync + 'static {
    /// How the launch-time route audit and the 403 answer name it, e.g. `role admin`.
    fn description() -> String;

    /// Whether `user` meets it. Pure: decided from the user's roles and scopes only.
    fn allows(user: &AuthorizedUser) -> bool;
}

/// Any role at all: what [`AuthorizedUser`] alone checks. The default of [`Authorized`].
#[derive(Debug, Clone, Copy)]
pub struct AnyRole;

impl Requirement for AnyRole {
    fn description() -> String {
        "any role".to_string()
    }

    fn allows(user: &AuthorizedUser) -> bool {
        !user.roles.is_empty()
    }
}

/// Declares a role requirement: `role!(pub Admin = "admin");` makes a type `Admin` whose
/// [`Requirement`] is holding the App ID role named `admin`.
#[macro_export]
macro_rules! role {
    ($(#[$meta:meta])* $vis:vis $name:ident = $role:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        impl $crate::Requirement for $name {
            fn description() -> ::std::string::String {
                ::std::string::String::from(concat!("role ", $role))
            }

            fn allows(user: &$crate::AuthorizedUser) -> bool {
                user.roles.iter().any(|role| role == $role)
            }
        }
    };
}

/// Declares a scope requirement: `scope!(pub ReadReports = "read:reports");` makes a type
/// whose [`Requirement`] is the access token's `scope` claim listing `read:reports` (App ID
/// puts the scopes of the user's roles there, as bare names).
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        impl $crate::Requirement for $name {
            fn description() -> ::std::string::String {
                ::std::string::String::from(concat!("scope ", $scope))
            }

            fn allows(user: &$crate::AuthorizedUser) -> bool {
                user.scopes.iter().any(|scope| scope == $scope)
            }
        }
    };
}

role!(
    /// The App ID role `admin` (the example `/admin_route` needs it).
    pub Admin = "admin"
);

/// A tuple of requirements, for [`AnyOf`] and [`AllOf`].
pub trait Requirements: Send + Sync + 'static {
    /// The members' descriptions, in order.
    fn descriptions() -> Vec<String>;
    /// Whether every member allows `user`.
    fn all(user: &AuthorizedUser) -> bool;
    /// Whether at least one member allows `user`.
    fn any(user: &AuthorizedUser) -> bool;
}

macro_rules! tuple_requirements {
    ($($member:ident),+) => {
        impl<$($member: Requirement),+> Requirements for ($($member,)+) {
            fn descriptions() -> Vec<String> {
                vec![$($member::description()),+]
            }

            fn all(user: &AuthorizedUser) -> bool {
                $($member::allows(user))&&+
            }

            fn any(user: &AuthorizedUser) -> bool {
                $($member::allows(user))||+
            }
        }
    };
}

tuple_requirements!(A);
tuple_requirements!(A, B);
tuple_requirements!(A, B, C);
tuple_requirements!(A, B, C, D);
tuple_requirements!(A, B, C, D, E);

/// Met when at least one requirement of the tuple is: `AnyOf<(Admin, Auditor)>`.
pub struct AnyOf<T>(PhantomData<fn() -> T>);

/// Met when every requirement of the tuple is: `AllOf<(Admin, ReadReports)>`.
pub struct AllOf<T>(PhantomData<fn() -> T>);

impl<T: Requirements> Requirement for AnyOf<T> {
    fn description() -> String {
        format!("any of ({})", T::descriptions().join(", "))
    }

    fn allows(user: &AuthorizedUser) -> bool {
        T::any(user)
    }
}

impl<T: Requirements> Requirement for AllOf<T> {
    fn description() -> String {
        format!("all of ({})", T::descriptions().join(", "))
    }

    fn allows(user: &AuthorizedUser) -> bool {
        T::all(user)
    }
}

/// A logged-in user with at least one role who also meets `R`. Dereferences to the
/// [`AuthorizedUser`].
pub struct Authorized<R: Requirement = AnyRole> {
    user: AuthorizedUser,
    requirement: PhantomData<fn() -> R>,
}

impl<R: Requirement> Authorized<R> {
    /// The user, without the proof of `R`.
    pub fn into_inner(self) -> AuthorizedUser {
        self.user
    }

    /// Wraps `user` if it meets `R` (for code that holds an [`AuthorizedUser`] already).
    pub fn check(user: AuthorizedUser) -> Option<Self> {
        R::allows(&user).then_some(Authorized { user, requirement: PhantomData })
    }
}

impl<R: Requirement> std::ops::Deref for Authorized<R> {
    type Target = AuthorizedUser;

    fn deref(&self) -> &AuthorizedUser {
        &self.user
    }
}

impl<R: Requirement> std::fmt::Debug for Authorized<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorized")
            .field("requirement", &R::description())
            .field("user", &self.user)
            .finish()
    }
}

/// Why a guard refused this request, when it was not the session decision itself (a
/// requirement not met, a bearer token refused): the catchers answer from it.
pub(crate) struct Refusal(pub(crate) Option<AuthError>);

/// Records `error` for the catchers (the first refusal of a request wins).
pub(crate) fn refuse(request: &Request<'_>, error: AuthError) {
    request.local_cache(|| Refusal(Some(error)));
}

/// The refusal a guard recorded for this request, if any.
pub(crate) fn refusal<'r>(request: &'r Request<'_>) -> Option<&'r AuthError> {
    request.local_cache(|| Refusal(None)).0.as_ref()
}

/// The 403 of a logged-in `user` who does not meet `R`.
pub(crate) fn insufficient<R: Requirement>(user: &AuthorizedUser) -> AuthError {
    tracing::info!(
        event = "access_denied",
        sub = %user.sub,
        reason = "requirement_not_met",
        requirement = %R::description()
    );
    AuthError::Insufficient {
        viewer: Viewer { name: user.name.clone(), email: user.email.clone() },
        requirement: R::description(),
    }
}

#[rocket::async_trait]
impl<'r, R: Requirement> FromRequest<'r> for Authorized<R> {
    type Error = AuthError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, AuthError> {
        // The same cached decision as `AuthorizedUser`: no second provider call.
        match AuthorizedUser::from_request(request).await {
            Outcome::Success(user) if R::allows(&user) => {
                Outcome::Success(Authorized { user, requirement: PhantomData })
            }
            Outcome::Success(user) => {
                let error = insufficient::<R>(&user);
                refuse(request, error.clone());
                Outcome::Error((Status::Forbidden, error))
            }
            Outcome::Error(error) => Outcome::Error(error),
            Outcome::Forward(status) => Outcome::Forward(status),
        }
    }
}

impl<R: Requirement> Sentinel for Authorized<R> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        rocket.state::<AppId>().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::scope!(Manage = "manage");
    crate::role!(Auditor = "auditor");

    fn user(roles: &[&str], scopes: &[&str]) -> AuthorizedUser {
        AuthorizedUser {
            sub: "s".into(),
            name: None,
            email: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: 0,
        }
    }

    #[test]
    fn roles_scopes_and_their_combinations_allow_exactly_who_they_name() {
        let carol = user(&["user", "admin"], &["read", "manage"]);
        let alice = user(&["user"], &["read"]);
        assert!(Admin::allows(&carol) && !Admin::allows(&alice));
        assert!(Manage::allows(&carol) && !Manage::allows(&alice));
        assert!(AnyOf::<(Auditor, Manage)>::allows(&carol));
        assert!(!AnyOf::<(Auditor, Manage)>::allows(&alice));
        assert!(AllOf::<(Admin, Manage)>::allows(&carol));
        assert!(!AllOf::<(Admin, Auditor)>::allows(&carol), "one missing member refuses");
        assert!(!Admin::allows(&user(&["administrator"], &[])), "role names match exactly");
        assert!(!AnyRole::allows(&user(&[], &["read"])));
    }

    #[test]
    fn descriptions_name_the_requirement_for_the_audit() {
        assert_eq!(Admin::description(), "role admin");
        assert_eq!(Manage::description(), "scope manage");
        assert_eq!(AnyOf::<(Admin, Manage)>::description(), "any of (role admin, scope manage)");
        assert_eq!(
            AllOf::<(Admin, AnyOf<(Auditor, Manage)>)>::description(),
            "all of (role admin, any of (role auditor, scope manage))"
        );
    }
}
