//! `rxsync demo`: the README's first command. On a fresh machine, with
//! nothing configured, it makes a working folder (its own `config.toml`,
//! SQLite database and vault key), loads the embedded sample dictionary,
//! starts the sandbox provider in-process on a loopback port, links demo
//! patients with every kind of link (OAuth 1.0a header and query, HMAC and
//! RSA; OAuth 2.0 with refresh; a provider that answers with a 301; CCR and
//! FHIR; one whose grant is revoked at the provider), runs one scheduled
//! pass through the same code as `rxsync run`, prints the regimens and the
//! exception queue, then keeps syncing and serving the operations endpoints
//! until Ctrl-C (`--once` exits after the pass). Two more patients link the
//! way patients do (`consented`): an invitation opened in a browser at the
//! review app (served in-process on a loopback port, its `public_url`), the
//! sandbox's consent, the callback, the identity check and the first pull —
//! one linked, one held for identity review. Run again on the same folder
//! it carries on: the sandbox keeps its tokens in `DIR/sandbox/state.json`.

mod consented;
mod files;
mod next;

use super::context::{Global, runtime};
use super::{CliResult, Failure, regimen, run::print_summary, run::wait_for_signal, table};
use anyhow::{Context as _, anyhow};
use rxsync::daemon::Daemon;
use rxsync::dict::{self, fda};
use rxsync::domain::{LinkState, PatientId, ProviderId};
use rxsync::sandbox::{self, SandboxConfig};
use rxsync::store::{ExceptionFilter, LinkSecrets, NewLink, NewPatient, Store};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// The sample dictionary and documents, built into the binary so the demo
/// works from any folder.
const PRODUCTS: &[u8] = include_bytes!("../../samples/ndc/product.txt");
const PACKAGES: &[u8] = include_bytes!("../../samples/ndc/package.txt");
const DEMO_CCR: &[u8] = include_bytes!("../../samples/ccr/demo.xml");
const DEMO_FHIR: &[u8] = include_bytes!("../../samples/fhir/demo.json");

/// Set up a demo with the sandbox provider, sync once, show the result,
/// then keep syncing and serving until Ctrl-C.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The working folder; its database is DIR/rxsync.db and its configuration DIR/config.toml
    #[arg(long, value_name = "DIR", default_value = "rxsync-demo")]
    dir: PathBuf,
    /// Exit after the first pass instead of serving until Ctrl-C
    #[arg(long)]
    once: bool,
    /// Where to serve /healthz, /readyz, /metrics (and the review UI)
    /// [default: 127.0.0.1:8080, or a free port when that is taken]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

struct DemoPatient {
    id: &'static str,
    name: &'static str,
    birth_date: &'static str,
    /// What the wrong-patient guard compares (the consent patients only).
    mrn: Option<&'static str>,
}

const PATIENTS: [DemoPatient; 7] = [
    DemoPatient {
        id: "demo-ccr-1",
        name: "Ada Synthetic",
        birth_date: "1948-03-14",
        mrn: None,
    },
    DemoPatient {
        id: "demo-fhir-1",
        name: "Grace Example",
        birth_date: "1952-07-30",
        mrn: None,
    },
    DemoPatient {
        id: "demo-3",
        name: "Alan Placeholder",
        birth_date: "1961-06-23",
        mrn: None,
    },
    DemoPatient {
        id: "demo-4",
        name: "Marie Fictional",
        birth_date: "1967-11-07",
        mrn: None,
    },
    DemoPatient {
        id: "demo-5",
        name: "Edsger Sample",
        birth_date: "1930-05-11",
        mrn: None,
    },
    // Linked by consent (`consented::INVITED`): the sandbox's account
    // demo-6 is hers (MRN-demo-6, Specimen, 1958-08-26); demo-7 signs in
    // with another person's account.
    DemoPatient {
        id: "demo-6",
        name: "Katherine Specimen",
        birth_date: "1958-08-26",
        mrn: Some("MRN-demo-6"),
    },
    DemoPatient {
        id: "demo-7",
        name: "Hedy Testcase",
        birth_date: "1944-11-09",
        mrn: Some("MRN-demo-7"),
    },
];

/// How a demo link gets its tokens from the sandbox.
enum Consent {
    Oauth1 {
        consumer: &'static str,
    },
    /// `revoke`: the grant is revoked at the provider right after linking.
    Oauth2 {
        client: &'static str,
        expires_in: u64,
        revoke: bool,
    },
}

struct DemoLink {
    patient: &'static str,
    provider: &'static str,
    consent: Consent,
    /// What it shows.
    about: &'static str,
}

const LINKS: [DemoLink; 6] = [
    DemoLink {
        patient: "demo-ccr-1",
        provider: "demo-ccr-hmac-header",
        consent: Consent::Oauth1 {
            consumer: "demo-hmac-header",
        },
        about: "CCR, OAuth 1.0a HMAC-SHA1 in the Authorization header",
    },
    DemoLink {
        patient: "demo-fhir-1",
        provider: "demo-fhir-oauth2",
        consent: Consent::Oauth2 {
            client: "demo-client",
            expires_in: 30,
            revoke: false,
        },
        about: "FHIR, OAuth 2.0 bearer, refreshed (rotating) before expiry",
    },
    DemoLink {
        patient: "demo-3",
        provider: "demo-ccr-hmac-query",
        consent: Consent::Oauth1 {
            consumer: "demo-hmac-query",
        },
        about: "CCR, OAuth 1.0a HMAC-SHA256 in the query",
    },
    DemoLink {
        patient: "demo-3",
        provider: "demo-ccr-rsa",
        consent: Consent::Oauth1 {
            consumer: "demo-rsa",
        },
        about: "CCR, OAuth 1.0a RSA-SHA1",
    },
    DemoLink {
        patient: "demo-4",
        provider: "demo-fhir-moved",
        consent: Consent::Oauth2 {
            client: "demo-norotate",
            expires_in: 3600,
            revoke: false,
        },
        about: "FHIR behind a 301 (remembered), bearer in the query",
    },
    DemoLink {
        patient: "demo-5",
        provider: "demo-fhir-revoked",
        consent: Consent::Oauth2 {
            client: "demo-public",
            expires_in: 3600,
            revoke: true,
        },
        about: "FHIR, a grant the patient revoked at the provider (needs re-link)",
    },
];

/// The demo patients' ids at the sandbox: the same as the local ones (the
/// sample FHIR document's subject is `Patient/demo-fhir-1`, and rxsync checks it).
fn remote(patient: &str) -> String {
    patient.to_string()
}

pub fn run(global: &Global, args: Args) -> CliResult {
    if global.config.is_some() || global.db.is_some() {
        return Err(super::usage(
            "demo makes its own configuration and database: use --dir instead of --config/--db",
        ));
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let sandbox_dir = dir.join("sandbox");
    files::write_sandbox_data(&sandbox_dir)?;
    let rt = runtime()?;
    rt.block_on(demo(&dir, &sandbox_dir, &args))
}

async fn demo(dir: &Path, sandbox_dir: &Path, args: &Args) -> CliResult {
    let (listener, port_note) = bind_sandbox(sandbox_dir).await?;
    let sandbox_addr = listener.local_addr().map_err(|e| anyhow!("{e}"))?;
    let port_file = sandbox_dir.join("port");
    std::fs::write(&port_file, sandbox_addr.port().to_string())
        .with_context(|| format!("cannot write {}", port_file.display()))?;
    let sandbox_config = SandboxConfig::load(Some(sandbox_dir)).map_err(|e| anyhow!("{e}"))?;
    // The providers' secrets go to files that config.toml names, so that
    // every command run later on this folder finds them.
    files::write_secrets(dir, &sandbox_config)?;
    let (stop, stopped) = watch::channel(false);
    let mut sandbox_stop = stopped.clone();
    let sandbox_data = sandbox_dir.to_path_buf();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = sandbox_stop.wait_for(|s| *s).await;
        };
        if let Err(e) =
            sandbox::serve_with_shutdown(listener, sandbox_config, Some(sandbox_data), shutdown)
                .await
        {
            eprintln!("the sandbox provider stopped: {e}");
        }
    });
    let sandbox_base = format!("http://{sandbox_addr}");
    // The review app: where invitations point and consents come back
    // (`[review] public_url`), so it is bound before config.toml is written.
    let (review_listener, listen_note) = bind_listen(args.listen.as_deref()).await?;
    let review_addr = review_listener.local_addr().map_err(|e| anyhow!("{e}"))?;

    let config_path = dir.join("config.toml");
    std::fs::write(
        &config_path,
        files::demo_config(&sandbox_base, &review_addr),
    )
    .with_context(|| format!("cannot write {}", config_path.display()))?;
    let demo_global = Global {
        config: Some(config_path.clone()),
        db: None,
    };
    // RXSYNC_DATABASE_URL, when set, wins over the `[database] path` of
    // the demo's config.toml (as for every command): the demo then runs on
    // that PostgreSQL database, and says so.
    let mut ctx = demo_global.open()?;
    println!(
        "rxsync demo in {} (database: {}, configuration {})",
        dir.display(),
        database_words(&ctx.database),
        config_path.display()
    );
    println!(
        "sandbox provider on {sandbox_base} (data {}){port_note}",
        sandbox_dir.display()
    );
    println!("review app on http://{review_addr} (invitations and consents come back here)");
    setup_store(&mut ctx.store)?;
    let key = ctx.vault_key()?;
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    for l in &LINKS {
        let patient = PatientId::parse(l.patient).map_err(|e| anyhow!("{e}"))?;
        let provider = ProviderId::parse(l.provider).map_err(|e| anyhow!("{e}"))?;
        let exists = ctx
            .store
            .links(Some(&patient))?
            .iter()
            .any(|x| x.provider == l.provider);
        if exists {
            continue;
        }
        let secrets = consent(&client, &sandbox_base, l).await?;
        let (id, _) = ctx.store.add_link(
            &NewLink {
                patient: &patient,
                provider: &provider,
                remote_patient: &remote(l.patient),
                secrets: secrets.0,
                expires_at: secrets.1,
                scope: None,
                grant_expires_at: None,
            },
            &key,
            "demo",
        )?;
        println!(
            "linked {} to {} (link {id}): {}",
            l.patient, l.provider, l.about
        );
    }

    let db = ctx.database.clone();
    let interval = ctx.config.sync.interval;
    let review = ctx.config.review.clone();
    let public = review
        .public_url
        .clone()
        .ok_or_else(|| anyhow!("the demo's config.toml has no [review] public_url"))?;
    let (puller, store) = ctx.puller()?;
    let consent_links = consent_links(&store)?;
    drop(store);
    let daemon = Daemon::new(puller, &db)?;
    // The review app links in the browser through the daemon's own puller
    // and writer, as `rxsync run` does.
    let (puller, writer) = daemon.linking_parts();
    let web = rxsync::web::AppState::new(&db, &review)
        .map_err(|e| anyhow!("{e}"))?
        .with_linking(public.clone(), puller, writer.clone());
    let server = super::run::spawn_server(review_listener, web, daemon.router(), stopped.clone());
    consented::set_identities(&client, &sandbox_base).await?;
    let sandbox_url = url::Url::parse(&sandbox_base).map_err(|e| anyhow!("{e}"))?;
    let mut outcomes = Vec::new();
    for i in &consented::INVITED {
        if consent_links.iter().any(|p| p == i.patient) {
            continue;
        }
        let outcome = consented::link(&writer, &public, &sandbox_url, i).await?;
        println!(
            "invitation for {} at {} opened in a browser: {} — {}",
            i.patient,
            consented::PROVIDER,
            outcome.outcome,
            i.about
        );
        outcomes.push(outcome);
    }

    println!("\nOne scheduled pass (the same code as `rxsync run --once`):");
    let summary = daemon.pass(stopped.clone()).await;
    print_summary(&summary, super::output::Format::Table)?;

    let store = Store::connect(&db)?;
    print_results(&store)?;
    let next = next::Next {
        dir,
        config: &config_path,
        sandbox_addr,
        sandbox_dir,
    };
    next.print_consents(&store, &outcomes)?;
    next.print(&store)?;
    if args.once {
        let _ = stop.send(true);
        let _ = server.await;
        daemon.close().await;
        return Ok(());
    }
    drop(store);

    let (user, password) = demo_login(dir, &db)?;
    if let Some(note) = listen_note {
        println!();
        table::say(&note, 0);
    }
    println!(
        "\nReview the queue in the browser: http://{review_addr}  (login: {user} / {password})"
    );
    println!("Also /healthz /readyz /metrics there; syncing on schedule; Ctrl-C stops.");
    let signal_stop = stop.clone();
    let signalled = wait_for_signal();
    let signal = std::sync::Arc::new(std::sync::OnceLock::new());
    let signal_seen = signal.clone();
    tokio::spawn(async move {
        let _ = signal_seen.set(signalled.await);
        let _ = signal_stop.send(true);
    });
    let serving = std::time::Instant::now();
    let summary = daemon.run(stopped).await;
    let _ = stop.send(true);
    let _ = server.await;
    daemon.close().await;
    println!();
    println!(
        "{}",
        next::stopped(
            signal.get().copied().unwrap_or("a signal"),
            serving.elapsed(),
            interval,
            &summary,
            dir
        )
    );
    Ok(())
}

/// Which database the demo runs on, for people: the engine and the file,
/// or the URL without its password.
fn database_words(database: &rxsync::store::Database) -> String {
    match database {
        rxsync::store::Database::Sqlite(path) => format!("SQLite {}", path.display()),
        rxsync::store::Database::Postgres(target) => {
            format!("PostgreSQL {target}, from RXSYNC_DATABASE_URL")
        }
    }
}

/// The patients with a link at the consent provider (made by an earlier
/// run: the demo does not consent for them again).
fn consent_links(store: &Store) -> Result<Vec<String>, Failure> {
    Ok(store
        .links(None)?
        .into_iter()
        .filter(|l| l.provider == consented::PROVIDER)
        .map(|l| l.patient)
        .collect())
}

/// The sandbox's listener: on the port of the last run when it is free,
/// so that the links' URLs stay valid for `rxsync run` on this folder;
/// else on a free loopback port, with a note saying why.
async fn bind_sandbox(sandbox_dir: &Path) -> Result<(tokio::net::TcpListener, String), Failure> {
    let last_port: u16 = std::fs::read_to_string(sandbox_dir.join("port"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let fresh = || async {
        tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Failure::Failed(anyhow!("cannot listen on loopback: {e}")))
    };
    if last_port == 0 {
        return Ok((
            fresh().await?,
            " — a free loopback port, kept for the next runs".into(),
        ));
    }
    match tokio::net::TcpListener::bind(("127.0.0.1", last_port)).await {
        Ok(l) => Ok((l, " — the port of the last run".into())),
        Err(e) => Ok((
            fresh().await?,
            format!(
                " — the port of the last run, {last_port}, is taken ({e}), so config.toml now points here"
            ),
        )),
    }
}

/// The demo's review login: user `demo` (admin, so the Links page shows
/// too) with a random password kept in `DIR/demo-login.txt` (mode 0600), made
/// on the first run.
fn demo_login(dir: &Path, db: &rxsync::store::Database) -> Result<(String, String), Failure> {
    use rand::Rng;
    let file = dir.join("demo-login.txt");
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Some((user, password)) = text.trim().split_once(' ')
    {
        return Ok((user.to_string(), password.to_string()));
    }
    let password: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let hash = rxsync::web::hash_password(&password).map_err(|e| anyhow!("{e}"))?;
    let name = rxsync::store::UserName::parse("demo").map_err(|e| anyhow!("{e}"))?;
    let mut store = Store::connect(db)?;
    if store.user(&name)?.is_some() {
        return Ok((
            "demo".into(),
            format!(
                "(unknown: {} was removed; add another user with rxsync user add)",
                file.display()
            ),
        ));
    }
    store.add_user(&name, rxsync::store::Role::Admin, &hash, "demo")?;
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        writeln!(f, "demo {password}")
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(("demo".into(), password))
}

/// `--listen`, else 127.0.0.1:8080, else a free loopback port — and then a
/// note saying why it is not 8080.
async fn bind_listen(
    listen: Option<&str>,
) -> Result<(tokio::net::TcpListener, Option<String>), Failure> {
    if let Some(l) = listen {
        let addr: SocketAddr = l
            .parse()
            .map_err(|e| super::usage(format!("--listen: {e}")))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Failed(anyhow!("cannot listen on {addr}: {e}")))?;
        return Ok((listener, None));
    }
    match tokio::net::TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).await {
        Ok(l) => Ok((l, None)),
        Err(e) => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| Failure::Failed(anyhow!("cannot listen on loopback: {e}")))?;
            Ok((
                listener,
                Some(format!(
                    "Port {DEFAULT_PORT}, where the review UI usually is, is taken ({e}): serving on a free port instead (choose one with --listen ADDR)."
                )),
            ))
        }
    }
}

/// Where the demo serves the review UI unless told or the port is taken.
const DEFAULT_PORT: u16 = 8080;

/// The dictionary and the demo patients, when missing.
fn setup_store(store: &mut Store) -> Result<(), Failure> {
    if store.dictionary_stats()?.packages == 0 {
        let (products, _) =
            fda::read_products(PRODUCTS).context("embedded samples/ndc/product.txt")?;
        let (packages, _) =
            fda::read_packages(PACKAGES).context("embedded samples/ndc/package.txt")?;
        let stats = store.replace_dictionary(&products, &packages, dict::SAMPLE_SOURCE, "demo")?;
        println!(
            "loaded the sample dictionary: {} products, {} packages",
            stats.products, stats.packages
        );
    }
    for p in &PATIENTS {
        let id = PatientId::parse(p.id).map_err(|e| anyhow!("{e}"))?;
        if store.patient(&id)?.is_none() {
            store.add_patient(
                &NewPatient {
                    id,
                    mrn: p.mrn.map(str::to_string),
                    name: Some(p.name.to_string()),
                    birth_date: Some(p.birth_date.to_string()),
                },
                "demo",
            )?;
        }
    }
    Ok(())
}

/// Asks the sandbox for a demo link's tokens (the consent another system
/// would have collected), revoking the grant at once for the revoked demo.
async fn consent(
    client: &reqwest::Client,
    base: &str,
    l: &DemoLink,
) -> Result<(LinkSecrets, Option<chrono::DateTime<chrono::Utc>>), Failure> {
    let post = |path: &'static str, body: Value| {
        let url = format!("{base}{path}");
        let req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        async move {
            let resp = req
                .send()
                .await
                .map_err(|e| anyhow!("the sandbox did not answer: {e}"))?;
            let status = resp.status();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| anyhow!("the sandbox's answer was cut: {e}"))?;
            let json: Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("the sandbox's answer is not JSON: {e}"))?;
            if !status.is_success() {
                return Err(anyhow!("the sandbox refused {path}: {json}"));
            }
            Ok::<_, anyhow::Error>(json)
        }
    };
    let text = |v: &Value, k: &str| -> Result<SecretString, Failure> {
        v[k].as_str()
            .map(|s| SecretString::from(s.to_string()))
            .ok_or_else(|| Failure::Failed(anyhow!("the sandbox's answer has no {k}")))
    };
    match l.consent {
        Consent::Oauth1 { consumer } => {
            let t = post(
                "/admin/oauth1/tokens",
                json!({"consumer_key": consumer, "patient": remote(l.patient)}),
            )
            .await?;
            Ok((
                LinkSecrets::Oauth1 {
                    token: text(&t, "token")?,
                    token_secret: text(&t, "token_secret")?,
                },
                None,
            ))
        }
        Consent::Oauth2 {
            client: client_id,
            expires_in,
            revoke,
        } => {
            let g = post(
                "/admin/oauth2/grants",
                json!({"client_id": client_id, "patient": remote(l.patient), "expires_in": expires_in}),
            )
            .await?;
            if revoke {
                let refresh = g["refresh_token"].as_str().unwrap_or_default();
                let form: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("token", refresh), ("client_id", client_id)])
                    .finish();
                client
                    .post(format!("{base}/oauth2/revoke"))
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form)
                    .send()
                    .await
                    .map_err(|e| anyhow!("the sandbox did not answer: {e}"))?;
            }
            let expires_at = chrono::Utc::now() + chrono::Duration::seconds(expires_in as i64);
            Ok((
                LinkSecrets::Oauth2 {
                    access_token: text(&g, "access_token")?,
                    refresh_token: Some(text(&g, "refresh_token")?),
                },
                Some(expires_at),
            ))
        }
    }
}

fn print_results(store: &Store) -> Result<(), Failure> {
    println!();
    for l in &LINKS {
        let id = PatientId::parse(l.patient).map_err(|e| anyhow!("{e}"))?;
        if let Some(view) = store.regimen(&id, l.provider, None)? {
            regimen::print_regimen(&view);
            println!();
        }
    }
    println!("Links:");
    for l in store.links(None)? {
        table::say(
            &format!(
                "  link {} {} → {} ({}): {}{}",
                l.id,
                l.patient,
                l.provider,
                l.scheme,
                l.state,
                match (l.state, &l.last_error) {
                    (LinkState::NeedsRelink, _) =>
                        " — the patient must consent again, then: rxsync link add".to_string(),
                    (LinkState::Held, _) => format!(
                        " — the remote identity does not match: rxsync link confirm {} --by NAME --note TEXT (or link reject)",
                        l.id
                    ),
                    (_, Some(e)) => format!(" — last sync failed: {e}"),
                    _ => String::new(),
                }
            ),
            4,
        );
    }
    let open = store.exceptions(&ExceptionFilter {
        state: Some(rxsync::domain::ExceptionState::Open),
        ..Default::default()
    })?;
    println!("\nException queue: {} open", open.len());
    for e in &open {
        let item = e
            .item
            .as_ref()
            .map(|i| format!("#{} {}", i.position, i.name.as_deref().unwrap_or("")))
            .unwrap_or_default();
        table::say(
            &format!(
                "  [{}] {} {} {} — {}",
                e.id, e.patient, e.kind, item, e.detail
            ),
            6,
        );
    }
    Ok(())
}
