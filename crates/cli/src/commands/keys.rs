//! `emdp keys`: create, list and revoke the HTTP API's keys.

use std::future::Future;
use std::process::ExitCode;

use emdp_app::ports::{ApiKey, Role};
use emdp_app::usecases::keys::{KeyError, KeyService};

use crate::db::{Access, DatabaseArgs};
use crate::error::CliError;
use crate::output::{OutputFormat, write_out};

/// Manage API keys (`Authorization: Bearer <key>`).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a key and print it once (only its hash is stored).
    Create(CreateArgs),
    /// List the keys (names, roles, prefixes, creation, last use, revocation).
    List(ListArgs),
    /// Revoke a key by name or id; requests with it are refused from then on.
    Revoke(RevokeArgs),
}

/// `emdp keys create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A unique name (who or what uses the key).
    #[arg(long)]
    pub name: String,
    /// reader (GET), ingester (reader + validate and ingest) or admin (everything).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `emdp keys list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `emdp keys revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key's name or id.
    #[arg(value_name = "NAME|ID")]
    pub key: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// Runs `work` on the key service of `database` (created if missing when `access` writes),
/// closing the stores afterwards.
async fn with_service<T, Work>(
    database: &DatabaseArgs,
    access: Access,
    work: impl FnOnce(KeyService) -> Work,
) -> Result<T, CliError>
where
    Work: Future<Output = Result<T, KeyError>>,
{
    let url = database.url()?;
    crate::db::with_stores(
        &url,
        access,
        |stores| async move { work(KeyService::new(stores.keys)).await.map_err(key_error) },
    )
    .await
}

fn key_error(err: KeyError) -> CliError {
    match err {
        KeyError::Store(err) => CliError::Store(err),
        other => CliError::Usage(other.to_string()),
    }
}

fn time(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn table(keys: &[ApiKey]) -> String {
    let mut text = format!(
        "{:<6} {:<24} {:<9} {:<14} {:<20} {:<20} {:<20}\n",
        "id", "name", "role", "prefix", "created", "last used", "revoked"
    );
    for key in keys {
        text += &format!(
            "{:<6} {:<24} {:<9} {:<14} {:<20} {:<20} {:<20}\n",
            key.id,
            key.name,
            key.role.as_str(),
            key.prefix,
            time(Some(key.created_at)),
            time(key.last_used_at),
            time(key.revoked_at)
        );
    }
    text
}

/// Runs `emdp keys ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    crate::db::block_on(async move {
        match command {
            Command::Create(args) => {
                let created = with_service(&args.database, Access::Write, |keys| async move {
                    keys.create(&args.name, args.role).await
                })
                .await?;
                match args.output {
                    OutputFormat::Json => {
                        let mut value = serde_json::to_value(&created.key).unwrap_or_default();
                        value["key"] = serde_json::Value::String(created.secret);
                        write_out(&format!("{value}\n"))?;
                    }
                    OutputFormat::Text => {
                        write_out(&format!("{}\n", created.secret))?;
                        eprintln!(
                            "emdp: created key '{}' (id {}, role {}): store it now, it is not shown again",
                            created.key.name, created.key.id, created.key.role
                        );
                    }
                }
            }
            Command::List(args) => {
                let keys = with_service(&args.database, Access::Read, |keys| async move { keys.list().await }).await?;
                match args.output {
                    OutputFormat::Json => {
                        write_out(&format!("{}\n", serde_json::to_string(&keys).unwrap_or_default()))?
                    }
                    OutputFormat::Text => write_out(&table(&keys))?,
                }
            }
            Command::Revoke(args) => {
                let key =
                    with_service(&args.database, Access::Write, |keys| async move { keys.revoke(&args.key).await })
                        .await?;
                eprintln!("emdp: revoked key '{}' (id {}) at {}", key.name, key.id, time(key.revoked_at));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
