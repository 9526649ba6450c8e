use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::edge::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let deps = delivery_reports::Deps {
        store: config::store_from_env(&sdk)?,
        profile: config::sender_profile()?,
    };
    let deps = &deps;
    run(service_fn(|event: LambdaEvent<_>| async move {
        Ok::<_, Error>(delivery_reports::handle(deps, event.payload).await)
    }))
    .await
}
