//! `rxsync user add|list|disable` and `rxsync token create`: accounts of the
//! review web application. Passwords are read from the terminal (not
//! echoed, asked twice) or from stdin, hashed with argon2id, and never
//! printed; an API token is printed once, and only its hash is kept.

use super::context::Global;
use super::output::{self, Format};
use super::table::{Column, Table};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::store::{Role, UserName};
use std::io::{IsTerminal as _, Read as _};

/// Longest password accepted on stdin (bytes).
const MAX_PASSWORD_INPUT: u64 = 4096;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a user; the password is read from the terminal, or from stdin when it is not one
    Add {
        #[arg(long, value_name = "NAME")]
        name: String,
        /// clinician (resolves exceptions) or admin (also manages links and users)
        #[arg(long)]
        role: String,
    },
    /// List users (never a password)
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Disable a user: no more logins; their sessions end and their API tokens stop working
    Disable {
        #[arg(long, value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once (only its hash is stored)
    Create {
        #[arg(long, value_name = "NAME")]
        user: String,
    },
}

fn user_name(text: &str) -> Result<UserName, Failure> {
    UserName::parse(text).map_err(|e| usage(format!("--name: {e}")))
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::Add { name, role } => {
            let name = user_name(&name)?;
            let role: Role = role.parse().map_err(|e| usage(format!("--role: {e}")))?;
            let password = read_password()?;
            let hash = rxsync::web::hash_password(&password)
                .map_err(|e| Failure::Failed(anyhow!("{e}")))?;
            let mut ctx = global.open()?;
            let user = ctx.store.add_user(&name, role, &hash, "cli")?;
            println!("added user {} ({})", user.name, user.role);
            Ok(())
        }
        Command::List { format } => {
            let ctx = global.open_existing()?;
            let users = ctx.store.users()?;
            match format {
                Format::Json => output::json(&users)?,
                Format::Table => {
                    let mut t = Table::new(COLUMNS);
                    for u in &users {
                        t.row(vec![
                            u.name.clone(),
                            u.role.to_string(),
                            u.created_at.clone(),
                            u.disabled_at.clone().unwrap_or_default(),
                        ]);
                    }
                    t.print();
                }
            }
            Ok(())
        }
        Command::Disable { name } => {
            let name = user_name(&name)?;
            let mut ctx = global.open()?;
            ctx.store.disable_user(&name, "cli")?;
            println!("disabled user {name}: sessions ended, API tokens revoked");
            Ok(())
        }
    }
}

/// `user list`'s columns.
const COLUMNS: &[Column] = &[
    Column::whole("name", 0),
    Column::whole("role", 1),
    Column::whole("created", 2),
    Column::whole("disabled", 3),
];

pub fn run_token(global: &Global, command: TokenCommand) -> CliResult {
    match command {
        TokenCommand::Create { user } => {
            let name = UserName::parse(&user).map_err(|e| usage(format!("--user: {e}")))?;
            let mut ctx = global.open()?;
            let (token, hash) = rxsync::web::new_api_token();
            let id = ctx.store.add_api_token(&name, &hash, "cli")?;
            // The one time the token is shown: it is not stored anywhere.
            println!("{token}");
            eprintln!("API token {id} for {name}: keep it secret; it is shown only this once.");
            Ok(())
        }
    }
}

/// The password: asked twice on a terminal, else the first line of stdin.
fn read_password() -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::Failed(anyhow!("cannot read the password: {e}")))?;
        let again = rpassword::prompt_password("Password again: ")
            .map_err(|e| Failure::Failed(anyhow!("cannot read the password: {e}")))?;
        if first != again {
            return Err(Failure::Failed(anyhow!(
                "the passwords differ; nothing stored"
            )));
        }
        return Ok(first);
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_PASSWORD_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::Failed(anyhow!("cannot read the password from stdin: {e}")))?;
    if text.len() as u64 > MAX_PASSWORD_INPUT {
        return Err(Failure::Failed(anyhow!(
            "the password on stdin is too long; nothing stored"
        )));
    }
    Ok(text.lines().next().unwrap_or_default().to_string())
}
