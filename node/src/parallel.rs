//! A tiny work-sharing map over a slice on all cores, for hashing many files.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;

/// Applies `f` to every item on up to `available_parallelism` threads and
/// returns the results in input order; the first error wins.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&items[i]);
                    let failed = r.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(r);
                    }
                    if failed {
                        // Stop handing out work; others finish their current item.
                        next.store(items.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot {
            Some(r) => out.push(r?),
            // Skipped after an earlier error: that error was returned above.
            None => continue,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn keeps_order_and_reports_errors() {
        let v: Vec<u32> = (0..1000).collect();
        let out = parallel_map(&v, |x| Ok(x * 2)).unwrap();
        assert_eq!(out, v.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = parallel_map(&v, |x| {
            if *x == 500 {
                Err(Error::InvalidArgument("boom".into()))
            } else {
                Ok(*x)
            }
        });
        assert!(err.is_err());
    }
}
