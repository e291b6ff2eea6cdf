//! Ownership-passing read helpers: a connection owns one `Vec<u8>` that reads append to.

use std::io;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

/// Read more bytes onto the end of `buf`, growing it when full. Returns the bytes read (0 = EOF).
pub async fn read_more<S: AsyncReadRent>(
    stream: &mut S,
    mut buf: Vec<u8>,
) -> (io::Result<usize>, Vec<u8>) {
    // Doubling, from a small start: an idle keep-alive connection keeps only what its messages
    // needed, a large body still takes few reads.
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(buf.capacity().max(4096));
    }
    let len = buf.len();
    let (res, slice) = stream.read(buf.slice_mut(len..)).await;
    (res, slice.into_inner())
}
