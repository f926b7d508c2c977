//! DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), KIP-554:
//! SCRAM credentials kept in the metadata quorum. An upsertion carries the salted password
//! (the client salts it); the broker stores only the salt, the iterations, `StoredKey` and
//! `ServerKey`, so no password, salted or not, leaves the request.

use std::collections::BTreeMap;

use bytes::Bytes;
use controller::{Command, ScramCredential, ScramMechanism};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::Rejected;
use super::{owned, str_bytes, Ctx};

pub(super) fn describe(
    ctx: &Ctx<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default().with_error_code(denied.code());
    }
    let image = ctx.broker.image();
    let info = |credentials: &BTreeMap<ScramMechanism, ScramCredential>| {
        credentials
            .iter()
            .map(|(m, c)| {
                CredentialInfo::default()
                    .with_mechanism(m.code())
                    .with_iterations(c.iterations)
            })
            .collect::<Vec<_>>()
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => image
            .scram_users()
            .map(|(user, credentials)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user.clone()))
                    .with_credential_infos(info(credentials))
            })
            .collect(),
        Some(users) => {
            let mut results = Vec::with_capacity(users.len());
            let names: Vec<String> = users.iter().map(|u| owned(&u.name)).collect();
            for (i, user) in names.iter().enumerate() {
                let result = DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user.clone()));
                let result = if names[..i].contains(user) || names[i + 1..].contains(user) {
                    error(result, ResponseError::DuplicateResource, format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"))
                } else {
                    match image.scram_users().find(|(u, _)| *u == user) {
                        Some((_, credentials)) => result.with_credential_infos(info(credentials)),
                        None => error(
                            result,
                            ResponseError::ResourceNotFound,
                            format!(
                                "Attempt to describe a user credential that does not exist: {user}"
                            ),
                        ),
                    }
                };
                results.push(result);
            }
            results
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn error(
    result: DescribeUserScramCredentialsResult,
    code: ResponseError,
    message: String,
) -> DescribeUserScramCredentialsResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// One alteration: user, mechanism code, and (iterations, salt, salted password), or
/// `None` to delete.
type Change = (String, i8, Option<(i32, Bytes, Bytes)>);

pub(super) async fn alter(
    ctx: &Ctx<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut changes: Vec<Change> = Vec::new();
    for d in &request.deletions {
        changes.push((owned(&d.name), d.mechanism, None));
    }
    for u in &request.upsertions {
        changes.push((
            owned(&u.name),
            u.mechanism,
            Some((u.iterations, u.salt.clone(), u.salted_password.clone())),
        ));
    }
    let mut results: Vec<AlterUserScramCredentialsResult> = Vec::new();
    let mut failed: BTreeMap<String, Rejected> = BTreeMap::new();
    // Kafka: ALTER on the cluster, or every user fails.
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Alter) {
        for (user, _, _) in &changes {
            failed.insert(user.clone(), Rejected::new(denied, "Authorization failed."));
        }
    }
    // As Kafka: a user named twice for the same mechanism fails as a whole.
    for (i, (user, mechanism, _)) in changes.iter().enumerate() {
        if changes[..i]
            .iter()
            .any(|(u, m, _)| u == user && m == mechanism)
        {
            failed.insert(
                user.clone(),
                Rejected::new(
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                ),
            );
        }
    }
    // Every change is applied (a user may change several mechanisms in one request); each
    // user gets one result.
    for (user, mechanism, change) in changes {
        if failed.contains_key(&user) {
            continue;
        }
        let outcome = async {
            if user.is_empty() {
                return Err(Rejected::new(
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty",
                ));
            }
            let mechanism = ScramMechanism::from_code(mechanism).ok_or_else(|| {
                Rejected::new(
                    ResponseError::UnsupportedSaslMechanism,
                    "Unknown SCRAM mechanism",
                )
            })?;
            let credential = change.map(|(iterations, salt, salted_password)| {
                let (stored_key, server_key) =
                    crate::server::scram_keys(mechanism, &salted_password);
                ScramCredential {
                    salt: salt.to_vec(),
                    stored_key,
                    server_key,
                    iterations,
                }
            });
            if credential.as_ref().is_some_and(|c| c.salt.is_empty()) {
                return Err(Rejected::new(
                    ResponseError::UnacceptableCredential,
                    "Salt must not be empty",
                ));
            }
            ctx.broker
                .submit(Command::AlterScramCredential {
                    user: user.clone(),
                    mechanism,
                    credential,
                })
                .await
                .map_err(Rejected::from)
        }
        .await;
        if let Err(rejected) = outcome {
            failed.insert(user, rejected);
        } else if !results.iter().any(|r| owned(&r.user) == user) {
            results.push(AlterUserScramCredentialsResult::default().with_user(str_bytes(user)));
        }
    }
    // A user with one failed alteration reports that failure.
    results.retain(|r| !failed.contains_key(&owned(&r.user)));
    for (user, rejected) in failed {
        results.push(
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(rejected.error.code())
                .with_error_message(Some(StrBytes::from_string(rejected.message))),
        );
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}
