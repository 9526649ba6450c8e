use crate::{api, poller, resources};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::app::reconcile::Thresholds;
use shared::domain::budget::{DAY_SECONDS, SenderProfile};
use shared::domain::cost::Rates;
use shared::edge::config::{self, load_twilio_credentials};
use shared::edge::deployment::RECONCILE_EVERY_MINUTES;
use shared::edge::deployment::{ADMISSIONS_QUEUE, QUEUE, REPORTS_QUEUE, SEND_BACKOFF, names};
use shared::edge::metrics;
use shared::edge::routes::{RSVP_PAGE_PATH, WEBHOOK_PATH};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The identity local requests carry when they name none (the JWT `sub` a
/// deployed stack would take from the organizer's token).
pub const DEV_ORGANIZER: &str = "dev-organizer";
/// Local only: names the organizer a request acts as (authorization tests).
pub const ORGANIZER_HEADER: &str = "x-dev-organizer";

#[derive(Debug, Clone)]
pub struct AwsEndpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub secretsmanager: String,
}

/// The AWS SDK's own names for per-service endpoints.
pub const AWS_ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";
pub const AWS_ENDPOINT_URL_SQS: &str = "AWS_ENDPOINT_URL_SQS";
pub const AWS_ENDPOINT_URL_SECRETS_MANAGER: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";

/// The endpoints given in the environment (`lookup` reads a variable):
/// each one set is used as is; the emulators serve the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenEndpoints {
    pub dynamodb: Option<String>,
    pub sqs: Option<String>,
    pub secretsmanager: Option<String>,
}

impl GivenEndpoints {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let given = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Self {
            dynamodb: given(AWS_ENDPOINT_URL_DYNAMODB),
            sqs: given(AWS_ENDPOINT_URL_SQS),
            secretsmanager: given(AWS_ENDPOINT_URL_SECRETS_MANAGER),
        }
    }

    /// moto serves DynamoDB and Secrets Manager.
    pub fn needs_moto(&self) -> bool {
        self.dynamodb.is_none() || self.secretsmanager.is_none()
    }

    /// fauxqs serves SQS.
    pub fn needs_fauxqs(&self) -> bool {
        self.sqs.is_none()
    }

    /// The endpoints, the emulators' (`moto`, `fauxqs`) filling the gaps.
    pub fn or(self, moto: &str, fauxqs: &str) -> AwsEndpoints {
        AwsEndpoints {
            dynamodb: self.dynamodb.unwrap_or_else(|| moto.to_owned()),
            sqs: self.sqs.unwrap_or_else(|| fauxqs.to_owned()),
            secretsmanager: self.secretsmanager.unwrap_or_else(|| moto.to_owned()),
        }
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn given_endpoints_are_used_and_only_the_other_emulators_start() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let none = GivenEndpoints::from_lookup(env(&[]));
        assert!(none.needs_moto() && none.needs_fauxqs());
        let sqs_only = GivenEndpoints::from_lookup(env(&[(AWS_ENDPOINT_URL_SQS, "http://q:1")]));
        assert!(sqs_only.needs_moto() && !sqs_only.needs_fauxqs());
        let all = GivenEndpoints::from_lookup(env(&[
            (AWS_ENDPOINT_URL_DYNAMODB, "http://d:1"),
            (AWS_ENDPOINT_URL_SQS, "http://q:1"),
            (AWS_ENDPOINT_URL_SECRETS_MANAGER, "http://s:1"),
        ]));
        assert!(!all.needs_moto() && !all.needs_fauxqs());
        let endpoints = all.or("http://moto", "http://fauxqs");
        assert_eq!(
            (
                endpoints.dynamodb.as_str(),
                endpoints.sqs.as_str(),
                endpoints.secretsmanager.as_str()
            ),
            ("http://d:1", "http://q:1", "http://s:1")
        );
        let partly = GivenEndpoints::from_lookup(env(&[
            (AWS_ENDPOINT_URL_DYNAMODB, "http://d:1"),
            (AWS_ENDPOINT_URL_SQS, " "),
        ]))
        .or("http://moto", "http://fauxqs");
        assert_eq!(
            (
                partly.dynamodb.as_str(),
                partly.sqs.as_str(),
                partly.secretsmanager.as_str()
            ),
            ("http://d:1", "http://fauxqs", "http://moto")
        );
    }
}

#[derive(Debug, Clone)]
pub struct ResourceNames {
    pub table: String,
    pub queue: String,
    pub dead_letter_queue: String,
    pub reports_queue: String,
    pub reports_dead_letter_queue: String,
    pub admissions_queue: String,
    pub admissions_dead_letter_queue: String,
    pub twilio_secret: String,
}

impl ResourceNames {
    /// The defaults, or with a suffix so tests sharing an emulator never share data.
    pub fn with_suffix(suffix: &str) -> Self {
        let name = |base: &str| {
            if suffix.is_empty() {
                base.to_owned()
            } else {
                format!("{base}-{suffix}")
            }
        };
        Self {
            table: name(names::TABLE),
            queue: name(names::QUEUE),
            dead_letter_queue: name(names::DEAD_LETTER_QUEUE),
            reports_queue: name(names::REPORTS_QUEUE),
            reports_dead_letter_queue: name(names::REPORTS_DEAD_LETTER_QUEUE),
            admissions_queue: name(names::ADMISSIONS_QUEUE),
            admissions_dead_letter_queue: name(names::ADMISSIONS_DEAD_LETTER_QUEUE),
            twilio_secret: name(names::TWILIO_SECRET),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TwilioSetup {
    pub account_sid: String,
    pub auth_token: String,
    /// The WhatsApp sender, E.164.
    pub from: String,
    /// Twilio's REST base: the simulator's URL locally.
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The API, webhook and dashboard port; 0 picks a free one.
    pub port: u16,
    pub aws: AwsEndpoints,
    pub names: ResourceNames,
    pub twilio: TwilioSetup,
    /// The WhatsApp sender's rate, daily limit and its window.
    pub profile: SenderProfile,
    /// What messages cost, for dry runs' estimates.
    pub rates: Rates,
    pub max_concurrency: u32,
    pub batch_size: u32,
    pub visibility_timeout_seconds: u32,
    pub max_receive_count: u32,
    /// The sender's backoff after a retryable failure.
    pub retry_backoff: sender::Backoff,
    /// How long the poller waits on an empty queue (SQS long polling).
    pub poll_wait_seconds: u32,
    /// Guests one admissions consumer admits a second (a large send's pace).
    pub admit_guests_per_second: u32,
    /// How often reconciliation runs (the deployed schedule's rate).
    pub reconcile_every: Duration,
    pub reconcile_thresholds: Thresholds,
    /// The webhook's URL through a custom domain, as the deployed
    /// `WebhookPublicUrl` parameter sets it; None: only the local URL.
    pub webhook_public_url: Option<String>,
}

impl StackOptions {
    /// The deployed stack's queue settings ([`QUEUE`]).
    pub fn new(port: u16, aws: AwsEndpoints, names: ResourceNames, twilio: TwilioSetup) -> Self {
        Self {
            port,
            aws,
            names,
            twilio,
            profile: SenderProfile {
                rate_per_second: QUEUE.send_rate_per_second,
                daily_limit: QUEUE.daily_unique_recipients,
                window_seconds: DAY_SECONDS,
            },
            rates: Rates::default(),
            max_concurrency: QUEUE.max_concurrency,
            batch_size: QUEUE.batch_size,
            visibility_timeout_seconds: QUEUE.visibility_timeout_seconds,
            max_receive_count: QUEUE.max_receive_count,
            retry_backoff: SEND_BACKOFF,
            poll_wait_seconds: 1,
            admit_guests_per_second: ADMISSIONS_QUEUE.guests_per_second,
            reconcile_every: Duration::from_secs(RECONCILE_EVERY_MINUTES * 60),
            reconcile_thresholds: Thresholds::DEPLOYED,
            webhook_public_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("creating {what}: {reason}")]
    Bootstrap { what: &'static str, reason: String },
    #[error("binding the API port: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Config(#[from] shared::edge::config::ConfigError),
}

/// A running local stack; stops its server and poller on [`LocalStack::stop`] or drop.
pub struct LocalStack {
    pub api_url: String,
    pub webhook_url: String,
    /// The RSVP page, which guests' links open (`{api_url}/r/`).
    pub rsvp_page_url: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    /// Status reports the webhook deferred, and their dead-letter queue.
    pub reports_queue_url: String,
    pub reports_dead_letter_queue_url: String,
    /// A large send's chunks waiting to be admitted, and their dead-letter queue.
    pub admissions_queue_url: String,
    pub admissions_dead_letter_queue_url: String,
    pub names: ResourceNames,
    /// The WhatsApp sender's limits the stack runs with.
    pub profile: SenderProfile,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// SDK configuration with fixed test credentials whose access key names the
/// caller: each function gets its own, as each Lambda has its own role, so
/// a proxy in front of the emulators can tell who asked (the fault layer
/// holds each function to its role in template.yaml).
pub async fn sdk_config(principal: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            principal,
            "test",
            None,
            None,
            "local-stack",
        ))
        .retry_config(shared::edge::config::retry_config())
        .load()
        .await
}

/// The access key of the stack's own calls (creating resources), not a function's.
pub const BOOTSTRAP_PRINCIPAL: &str = "local-stack";

/// One identity's AWS clients, pointed at the stack's endpoints.
#[derive(Clone)]
struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    async fn new(principal: &str, aws: &AwsEndpoints) -> Self {
        let sdk = sdk_config(principal).await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(&aws.dynamodb)
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .endpoint_url(&aws.sqs)
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&sdk)
                    .endpoint_url(&aws.secretsmanager)
                    .build(),
            ),
        }
    }
}

/// The functions the local stack runs, by binary name (template.yaml's
/// `BuildProperties.Binary`).
/// Every function: those the route table names, and the four no route
/// calls (the queue's sender, the scheduled reconcile, the reports queue's
/// consumer, the admissions queue's consumer).
fn functions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = shared::edge::routes::ROUTES
        .iter()
        .map(|r| r.function)
        .chain(["sender", "reconcile", "delivery-reports", "admit"])
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

impl LocalStack {
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        metrics::disable();
        let admin = Clients::new(BOOTSTRAP_PRINCIPAL, &options.aws).await;
        let mut clients = std::collections::HashMap::new();
        for function in functions() {
            clients.insert(function, Clients::new(function, &options.aws).await);
        }
        let names = &options.names;

        resources::create_table(&admin.dynamodb, &names.table).await?;
        let (queue_url, dead_letter_queue_url) =
            resources::create_queues(&admin.sqs, &options).await?;
        let (reports_queue_url, reports_dead_letter_queue_url) =
            resources::create_reports_queues(&admin.sqs, &options).await?;
        let (admissions_queue_url, admissions_dead_letter_queue_url) =
            resources::create_admissions_queues(&admin.sqs, &options).await?;
        resources::seed_secret(&admin.secrets, &names.twilio_secret, &options.twilio).await?;

        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(StackError::Bind)?;
        let addr = listener.local_addr().map_err(StackError::Bind)?;
        let api_url = format!("http://{addr}");
        let webhook_url = format!("{api_url}{WEBHOOK_PATH}");
        let rsvp_page_url = format!("{api_url}{}", RSVP_PAGE_PATH.trim_end_matches("{token}"));

        let store = |function: &'static str| {
            Arc::new(DynamoStore::new(
                clients[function].dynamodb.clone(),
                &names.table,
            ))
        };
        let queue = |function: &'static str| -> Arc<dyn shared::ports::SendQueue> {
            Arc::new(SqsQueue::new(clients[function].sqs.clone(), &queue_url))
        };
        // Read back through the same code the Lambdas use, as each cold start does.
        let webhook_secret =
            load_twilio_credentials(&clients["webhook"].secrets, &names.twilio_secret).await?;
        let reports = Arc::new(SqsQueue::new(
            clients["webhook"].sqs.clone(),
            &reports_queue_url,
        ));
        // Templates read Content templates from Twilio for previews.
        let content = Arc::new(TwilioClient::new(
            &options.twilio.api_base,
            load_twilio_credentials(&clients["templates"].secrets, &names.twilio_secret).await?,
            TwilioClient::TIMEOUT,
        ));
        let functions = api::Functions::new(
            store,
            queue,
            api::ProviderSetup {
                auth_token: webhook_secret.auth_token,
                public_url: options.webhook_public_url.clone(),
                reports,
                content,
            },
            Arc::new(SqsQueue::new(
                clients["send-bulk"].sqs.clone(),
                &admissions_queue_url,
            )),
            options.profile,
            options.rates.clone(),
            rsvp_page_url.clone(),
        );
        let sender = &clients["sender"];
        let credentials = load_twilio_credentials(&sender.secrets, &names.twilio_secret).await?;
        let messenger = Arc::new(
            TwilioClient::new(&options.twilio.api_base, credentials, TwilioClient::TIMEOUT)
                .with_status_callback(webhook_url.clone()),
        );
        let sender_store = store("sender");
        let sender_queue = Arc::new(
            SqsQueue::new(sender.sqs.clone(), &queue_url).with_dead_letter(&dead_letter_queue_url),
        );
        // One sender "instance" per concurrency slot, each with its own pacer, as on Lambda.
        let mut senders = Vec::new();
        for _ in 0..options.max_concurrency {
            let pacer = config::pacer(options.profile.rate_per_second, options.max_concurrency)
                .map_err(|e| StackError::Bootstrap {
                    what: "sender",
                    reason: e.to_string(),
                })?;
            senders.push(poller::sender(Arc::new(sender::Deps {
                store: sender_store.clone(),
                messenger: messenger.clone(),
                queue: sender_queue.clone(),
                rsvp_page_url: rsvp_page_url.clone(),
                pacer,
                profile: options.profile,
                max_receive_count: options.max_receive_count,
                backoff: options.retry_backoff,
            })));
        }

        let (shutdown, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(api::serve(
            listener,
            Arc::new(functions),
            stopped.clone(),
        ))];
        let poll = poller::PollerConfig {
            queue_url: queue_url.clone(),
            batch_size: options.batch_size,
            wait_seconds: options.poll_wait_seconds,
        };
        let reconciler = &clients["reconcile"];
        let reconcile = reconcile::Deps {
            store: store("reconcile"),
            queue: Arc::new(SqsQueue::new(reconciler.sqs.clone(), &queue_url)),
            admissions: Arc::new(SqsQueue::new(reconciler.sqs.clone(), &admissions_queue_url)),
            messenger: Arc::new(TwilioClient::new(
                &options.twilio.api_base,
                load_twilio_credentials(&reconciler.secrets, &names.twilio_secret).await?,
                TwilioClient::TIMEOUT,
            )),
            thresholds: options.reconcile_thresholds,
            profile: options.profile,
            rsvp_page_url: rsvp_page_url.clone(),
        };
        tasks.push(tokio::spawn(reconcile_on_a_timer(
            reconcile,
            options.reconcile_every,
            stopped.clone(),
        )));
        // The event source mapping polls with the sender's role.
        poller::check_queue(&sender.sqs, &queue_url)
            .await
            .map_err(|reason| StackError::Bootstrap {
                what: "event source mapping",
                reason,
            })?;
        tasks.extend(poller::spawn(
            sender.sqs.clone(),
            poll,
            senders,
            stopped.clone(),
        ));
        // The reports queue's consumer, with its own role and mapping.
        let consumer = &clients["delivery-reports"];
        poller::check_queue(&consumer.sqs, &reports_queue_url)
            .await
            .map_err(|reason| StackError::Bootstrap {
                what: "event source mapping",
                reason,
            })?;
        let consumers = (0..REPORTS_QUEUE.max_concurrency)
            .map(|_| {
                poller::delivery_reports(Arc::new(delivery_reports::Deps {
                    store: store("delivery-reports"),
                    profile: options.profile,
                }))
            })
            .collect();
        let reports_poll = poller::PollerConfig {
            queue_url: reports_queue_url.clone(),
            batch_size: REPORTS_QUEUE.batch_size,
            wait_seconds: options.poll_wait_seconds,
        };
        tasks.extend(poller::spawn(
            consumer.sqs.clone(),
            reports_poll,
            consumers,
            stopped.clone(),
        ));
        // The admissions queue's consumer, with its own role and mapping.
        let admitter = &clients["admit"];
        poller::check_queue(&admitter.sqs, &admissions_queue_url)
            .await
            .map_err(|reason| StackError::Bootstrap {
                what: "event source mapping",
                reason,
            })?;
        let admitters = (0..ADMISSIONS_QUEUE.max_concurrency)
            .map(|_| {
                poller::admit(Arc::new(admit::Deps {
                    store: store("admit"),
                    queue: Arc::new(SqsQueue::new(admitter.sqs.clone(), &queue_url)),
                    guests_per_second: options.admit_guests_per_second,
                }))
            })
            .collect();
        let admissions_poll = poller::PollerConfig {
            queue_url: admissions_queue_url.clone(),
            batch_size: ADMISSIONS_QUEUE.batch_size,
            wait_seconds: options.poll_wait_seconds,
        };
        tasks.extend(poller::spawn(
            admitter.sqs.clone(),
            admissions_poll,
            admitters,
            stopped,
        ));
        Ok(Self {
            api_url,
            webhook_url,
            rsvp_page_url,
            queue_url,
            dead_letter_queue_url,
            reports_queue_url,
            reports_dead_letter_queue_url,
            admissions_queue_url,
            admissions_dead_letter_queue_url,
            names: options.names.clone(),
            profile: options.profile,
            dynamodb: admin.dynamodb,
            sqs: admin.sqs,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting requests and lets in-flight batches finish.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// Runs reconciliation every `every`, as the deployed schedule does.
async fn reconcile_on_a_timer(
    deps: reconcile::Deps,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        // Failures are logged by the handler; the next tick tries again.
        let _ = reconcile::handle(&deps).await;
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
