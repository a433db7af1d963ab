//! Design A: a version column and retries on conflict, no actors.
//!
//! Each buyer reads its seat's row, gives up if it has a holder, and
//! otherwise writes itself as holder on the condition that the version is
//! still the one it read, bumping the version; a lost race re-reads and
//! tries again after a short jittered pause, up to a cap. The booking is
//! recorded in the same transaction as the holder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

/// How often one buyer may lose a version race before giving up.
pub const RETRY_CAP: u32 = 50;

/// A seats table with a version column, and the bookings written with it.
#[async_trait]
pub trait SeatTable: Send + Sync {
    /// The holder and version of `seat`.
    async fn read(&self, seat: usize) -> Result<(Option<String>, i64), sqlx::Error>;
    /// Makes `buyer` the holder if the row is still at `version`, recording
    /// the booking in the same transaction; `false` when the version moved.
    async fn reserve_if_version(
        &self,
        seat: usize,
        buyer: &str,
        version: i64,
    ) -> Result<bool, sqlx::Error>;
    /// Seats that have a holder, read back from the table.
    async fn winners(&self) -> Result<u64, sqlx::Error>;
    /// Seats with more than one booking, read back from the table.
    async fn double_bookings(&self) -> Result<u64, sqlx::Error>;
}

/// How one buyer fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Became the holder.
    Won,
    /// The seat was taken.
    Lost,
    /// Lost the version race [`RETRY_CAP`] times.
    GaveUp,
}

/// Runs one buyer; returns how it fared and how many races it lost.
///
/// ```
/// use nexus_examples::bakeoff::{Attempt, MemorySeats, SeatTable, buy};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let seats = MemorySeats::new(2);
/// assert_eq!(buy(&*seats, 1, "ada").await.unwrap(), (Attempt::Won, 0));
/// assert_eq!(buy(&*seats, 1, "bob").await.unwrap(), (Attempt::Lost, 0));
/// assert_eq!(seats.winners().await.unwrap(), 1);
/// # });
/// ```
pub async fn buy(
    table: &dyn SeatTable,
    seat: usize,
    buyer: &str,
) -> Result<(Attempt, u64), sqlx::Error> {
    let mut retries = 0;
    loop {
        let (holder, version) = table.read(seat).await?;
        if holder.is_some() {
            return Ok((Attempt::Lost, retries));
        }
        if table.reserve_if_version(seat, buyer, version).await? {
            return Ok((Attempt::Won, retries));
        }
        retries += 1;
        if retries >= u64::from(RETRY_CAP) {
            return Ok((Attempt::GaveUp, retries));
        }
        tokio::time::sleep(Duration::from_micros(fastrand::u64(100..2_000))).await;
    }
}

/// The table in Postgres, one run's rows apart from every other run's.
///
/// ```no_run
/// use nexus_examples::bakeoff::{PgSeats, SeatTable, buy};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await.unwrap();
/// let seats = PgSeats::create(pool, 50).await.unwrap();
/// buy(&seats, 7, "ada").await.unwrap();
/// assert_eq!(seats.double_bookings().await.unwrap(), 0);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct PgSeats {
    pool: PgPool,
    run: uuid::Uuid,
}

impl PgSeats {
    /// Creates the tables if needed and the run's `seats` empty rows.
    pub async fn create(pool: PgPool, seats: usize) -> Result<Self, sqlx::Error> {
        let mut tx = pool.begin().await?;
        // Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog.
        sqlx::query("SELECT pg_advisory_xact_lock(7341003)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bakeoff_seats (
                run_id uuid NOT NULL, seat integer NOT NULL, holder text,
                version bigint NOT NULL DEFAULT 0, PRIMARY KEY (run_id, seat))",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bakeoff_bookings (
                run_id uuid NOT NULL, seat integer NOT NULL, buyer text NOT NULL,
                booked_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let run = uuid::Uuid::new_v4();
        let seats: Vec<i32> = (0..seats)
            .map(|s| i32::try_from(s).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO bakeoff_seats (run_id, seat) SELECT $1, s FROM UNNEST($2::int[]) AS s",
        )
        .bind(run)
        .bind(&seats)
        .execute(&pool)
        .await?;
        Ok(Self { pool, run })
    }
}

fn seat_id(seat: usize) -> i32 {
    i32::try_from(seat).unwrap_or(i32::MAX)
}

#[async_trait]
impl SeatTable for PgSeats {
    async fn read(&self, seat: usize) -> Result<(Option<String>, i64), sqlx::Error> {
        sqlx::query_as("SELECT holder, version FROM bakeoff_seats WHERE run_id = $1 AND seat = $2")
            .bind(self.run)
            .bind(seat_id(seat))
            .fetch_one(&self.pool)
            .await
    }

    async fn reserve_if_version(
        &self,
        seat: usize,
        buyer: &str,
        version: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE bakeoff_seats SET holder = $3, version = version + 1
             WHERE run_id = $1 AND seat = $2 AND version = $4",
        )
        .bind(self.run)
        .bind(seat_id(seat))
        .bind(buyer)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO bakeoff_bookings (run_id, seat, buyer) VALUES ($1, $2, $3)")
            .bind(self.run)
            .bind(seat_id(seat))
            .bind(buyer)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn winners(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bakeoff_seats WHERE run_id = $1 AND holder IS NOT NULL",
        )
        .bind(self.run)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unsigned_abs())
    }

    async fn double_bookings(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT seat FROM bakeoff_bookings WHERE run_id = $1
             GROUP BY seat HAVING count(*) > 1) AS doubled",
        )
        .bind(self.run)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unsigned_abs())
    }
}

type SeatRows = (Vec<(Option<String>, i64)>, Vec<(usize, String)>);

/// The same table in memory: a mutex stands in for the row's atomic update.
#[derive(Debug, Default)]
pub struct MemorySeats {
    // (holder, version) per seat and every booking made; one lock makes the
    // conditional update and its booking one atomic step, as the database
    // transaction does.
    rows: Mutex<SeatRows>,
}

impl MemorySeats {
    /// `seats` empty rows.
    pub fn new(seats: usize) -> Arc<Self> {
        Arc::new(Self {
            rows: Mutex::new((vec![(None, 0); seats], Vec::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SeatRows> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SeatTable for MemorySeats {
    async fn read(&self, seat: usize) -> Result<(Option<String>, i64), sqlx::Error> {
        Ok(self.lock().0[seat].clone())
    }

    async fn reserve_if_version(
        &self,
        seat: usize,
        buyer: &str,
        version: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut guard = self.lock();
        let (rows, bookings) = &mut *guard;
        if rows[seat].1 != version {
            return Ok(false);
        }
        rows[seat] = (Some(buyer.to_owned()), version + 1);
        bookings.push((seat, buyer.to_owned()));
        Ok(true)
    }

    async fn winners(&self) -> Result<u64, sqlx::Error> {
        Ok(self
            .lock()
            .0
            .iter()
            .filter(|(holder, _)| holder.is_some())
            .count() as u64)
    }

    async fn double_bookings(&self) -> Result<u64, sqlx::Error> {
        let guard = self.lock();
        let mut per_seat = vec![0_u32; guard.0.len()];
        for (seat, _) in &guard.1 {
            per_seat[*seat] += 1;
        }
        Ok(per_seat.iter().filter(|&&n| n > 1).count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_table_counts_a_write_that_skipped_the_holder_check() {
        let table = MemorySeats::new(3);
        assert!(table.reserve_if_version(1, "ada", 0).await.unwrap());
        // A writer that ignores the holder and only checks the version
        // books the seat a second time; the count must see it.
        assert!(table.reserve_if_version(1, "bob", 1).await.unwrap());
        assert!(!table.reserve_if_version(1, "cyd", 1).await.unwrap());
        assert_eq!(table.winners().await.unwrap(), 1);
        assert_eq!(table.double_bookings().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_buyer_of_a_taken_seat_loses_without_writing() {
        let table = MemorySeats::new(2);
        assert_eq!(buy(&*table, 0, "ada").await.unwrap(), (Attempt::Won, 0));
        assert_eq!(buy(&*table, 0, "bob").await.unwrap(), (Attempt::Lost, 0));
        assert_eq!(table.read(0).await.unwrap(), (Some("ada".to_owned()), 1));
        assert_eq!(table.double_bookings().await.unwrap(), 0);
    }
}
