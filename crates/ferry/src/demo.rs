//! Demo data: a platform operator and the tenant "Demo Accounting" with an
//! admin and a staff member. Running it again refreshes the passwords.

use ferry_core::{Clock, EmailAddress, Role, TenantName};
use ferry_store::{Db, tenants, users};

/// The demo tenant's name.
pub const DEMO_TENANT: &str = "Demo Accounting";

/// One demo login, printed at start.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// What the account is for.
    pub role: &'static str,
    /// Login email.
    pub email: String,
    /// The freshly set password.
    pub password: String,
}

fn fresh_password() -> String {
    // 20 characters from a 32-symbol alphabet: 100 bits, easy to type.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789-";
    (0..20)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
        .collect()
}

/// Creates or refreshes the demo accounts; returns their logins.
pub async fn seed(db: &Db, clock: &dyn Clock) -> anyhow::Result<Vec<DemoLogin>> {
    let now = clock.now();
    let tenant = match tenants::find_by_name(db, DEMO_TENANT).await? {
        Some(t) => t,
        None => tenants::create(db, &TenantName::parse("name", DEMO_TENANT)?, now).await?,
    };
    let people = [
        (
            "Platform operator",
            "operator@ferry.test",
            "Olive Operator",
            None,
        ),
        (
            "Tenant admin",
            "admin@demo-accounting.test",
            "Ada Admin",
            Some(Role::Admin),
        ),
        (
            "Staff",
            "staff@demo-accounting.test",
            "Sam Staff",
            Some(Role::Staff),
        ),
    ];
    let mut logins = Vec::new();
    for (label, email, name, role) in people {
        let email = EmailAddress::parse("email", email)?;
        let password = fresh_password();
        let hash = ferry_web::hash_password(password.clone()).await?;
        match users::find_by_email(db, &email).await? {
            Some(user) => users::set_password(db, &user.id, hash).await?,
            None => {
                match role {
                    None => users::create_operator(db, &email, name, Some(hash), now).await?,
                    Some(role) => {
                        users::create_member(db, &tenant.id, &email, name, hash, role, now).await?
                    }
                };
            }
        }
        logins.push(DemoLogin {
            role: label,
            email: email.to_string(),
            password,
        });
    }
    Ok(logins)
}
