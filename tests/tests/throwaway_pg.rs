//! The private cluster the restart and outage tests rely on: a row written
//! before a crash-restart is there after it, and a stopped server refuses
//! connections until it is started again.

use std::time::Duration;

use nexus_tests::ThrowawayPostgres;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

#[tokio::test]
async fn a_row_written_before_a_crash_restart_is_read_back_after_it() {
    let mut pg = ThrowawayPostgres::start_new();
    let url = pg.url();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");

    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES (1, 'survives')")
        .execute(&mut conn)
        .await
        .unwrap();

    pg.restart();
    let broken = sqlx::query("SELECT 1").execute(&mut conn).await;
    assert!(
        broken.is_err(),
        "the crash broke the connection opened before it"
    );
    let mut conn = PgConnection::connect(&url).await.expect("reconnect");
    let note: String = sqlx::query_scalar("SELECT note FROM kept WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, "survives");
    drop(conn);

    pg.stop();
    let refused = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url))
        .await
        .expect("a stopped server refuses at once");
    assert!(refused.is_err(), "a stopped server accepts no connection");
    pg.start();
    let mut conn = PgConnection::connect(&url).await.expect("connect again");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    drop(conn);

    let dir = pg.dir().to_owned();
    drop(pg);
    assert!(
        !dir.exists(),
        "dropping the cluster removed {}",
        dir.display()
    );
}
