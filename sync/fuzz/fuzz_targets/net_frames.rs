//! Any bytes a peer's stream carries: the request and response frame
//! readers of the transport never panic, never allocate past their limit,
//! and whatever they read re-frames to a prefix of the input.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use labmesh_sync::net::codec::{SyncResponse, read_request, read_response, write_request, write_response};
use libfuzzer_sys::fuzz_target;

/// Small, so the limits are exercised as well as the happy path.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = block_on(read_request(&mut Cursor::new(data), MAX)) {
        assert!(request.len() <= MAX);
        let mut framed = Cursor::new(Vec::new());
        block_on(write_request(&mut framed, &request)).expect("writes to memory");
        assert!(data.starts_with(framed.get_ref()), "request re-frames to the input");
    }
    if let Ok(response) = block_on(read_response(&mut Cursor::new(data), MAX)) {
        if let SyncResponse::Ok(replies) = &response {
            assert!(replies.iter().map(Vec::len).sum::<usize>() <= MAX);
        }
        let mut framed = Cursor::new(Vec::new());
        block_on(write_response(&mut framed, &response)).expect("writes to memory");
        assert!(data.starts_with(framed.get_ref()), "response re-frames to the input");
    }
});
