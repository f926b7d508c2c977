//! `strata user add|remove|list`: SCRAM credentials (AlterUserScramCredentials,
//! DescribeUserScramCredentials, KIP-554), as `kafka-configs.sh --entity-type users
//! --alter --add-config 'SCRAM-SHA-512=[iterations=8192,password=…]'` sets them. The
//! password is salted and hashed here; only the salted password travels.

use std::num::NonZeroU32;

use client::SaslMechanism;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

/// Kafka's SCRAM mechanisms, with their wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mechanism {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    fn code(self) -> i8 {
        match self {
            Mechanism::ScramSha256 => 1,
            Mechanism::ScramSha512 => 2,
        }
    }

    fn name_of(code: i8) -> &'static str {
        match code {
            1 => "SCRAM-SHA-256",
            2 => "SCRAM-SHA-512",
            _ => "UNKNOWN",
        }
    }

    fn sasl(self) -> SaslMechanism {
        match self {
            Mechanism::ScramSha256 => SaslMechanism::ScramSha256,
            Mechanism::ScramSha512 => SaslMechanism::ScramSha512,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Set a user's SCRAM credential for one mechanism (replacing any it had), e.g.
    /// `strata user add alice --password alice-secret`.
    Add {
        /// The user name (the principal is `User:<name>`).
        name: String,
        /// The password.
        #[arg(long)]
        password: String,
        #[arg(long, value_enum, default_value = "SCRAM-SHA-512")]
        mechanism: Mechanism,
        /// PBKDF2 iterations (Kafka accepts 4096 to 16384).
        #[arg(long, default_value_t = 8192)]
        iterations: u32,
    },
    /// Remove a user's SCRAM credential for one mechanism.
    Remove {
        name: String,
        #[arg(long, value_enum, default_value = "SCRAM-SHA-512")]
        mechanism: Mechanism,
    },
    /// List users with SCRAM credentials (all of them, or those named) and their
    /// mechanisms and iterations.
    List { names: Vec<String> },
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Kafka's message for an error code, with the broker's message when it sent one.
fn refusal(code: i16, message: Option<&StrBytes>) -> String {
    let error = kafka_protocol::error::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    match message {
        Some(m) if !m.is_empty() => format!("{error}: {m}"),
        _ => error,
    }
}

pub(crate) async fn run(command: UserCommand, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    match command {
        UserCommand::Add {
            name,
            password,
            mechanism,
            iterations,
        } => {
            let iterations = NonZeroU32::new(iterations)
                .ok_or_else(|| anyhow::anyhow!("--iterations must be positive"))?;
            let mut salt = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
                .map_err(|_| anyhow::anyhow!("no randomness for the salt"))?;
            let salted =
                client::scram_salted_password(mechanism.sasl(), &password, &salt, iterations);
            let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(s(name.clone()))
                    .with_mechanism(mechanism.code())
                    .with_iterations(iterations.get() as i32)
                    .with_salt(bytes::Bytes::copy_from_slice(&salt))
                    .with_salted_password(bytes::Bytes::from(salted)),
            ]);
            let response = cluster.any().send(request, 0).await?;
            for result in &response.results {
                anyhow::ensure!(
                    result.error_code == 0,
                    "{}: {}",
                    result.user,
                    refusal(result.error_code, result.error_message.as_ref())
                );
            }
            outln!("set {} for {name}", Mechanism::name_of(mechanism.code()))?;
        }
        UserCommand::Remove { name, mechanism } => {
            let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                ScramCredentialDeletion::default()
                    .with_name(s(name.clone()))
                    .with_mechanism(mechanism.code()),
            ]);
            let response = cluster.any().send(request, 0).await?;
            for result in &response.results {
                anyhow::ensure!(
                    result.error_code == 0,
                    "{}: {}",
                    result.user,
                    refusal(result.error_code, result.error_message.as_ref())
                );
            }
            outln!("removed {} of {name}", Mechanism::name_of(mechanism.code()))?;
        }
        UserCommand::List { names } => {
            let users = (!names.is_empty()).then(|| {
                names
                    .into_iter()
                    .map(|n| UserName::default().with_name(s(n)))
                    .collect()
            });
            let request = DescribeUserScramCredentialsRequest::default().with_users(users);
            let response = cluster.any().send(request, 0).await?;
            anyhow::ensure!(
                response.error_code == 0,
                "{}",
                refusal(response.error_code, response.error_message.as_ref())
            );
            outln!("{:<24} {:<14} ITERATIONS", "USER", "MECHANISM")?;
            for result in &response.results {
                if result.error_code != 0 {
                    outln!(
                        "{:<24} {}",
                        result.user.as_str(),
                        refusal(result.error_code, result.error_message.as_ref())
                    )?;
                    continue;
                }
                for info in &result.credential_infos {
                    outln!(
                        "{:<24} {:<14} {}",
                        result.user.as_str(),
                        Mechanism::name_of(info.mechanism),
                        info.iterations
                    )?;
                }
            }
        }
    }
    Ok(())
}
