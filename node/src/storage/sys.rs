//! The few system calls local storage needs beyond `std`: kernel copies,
//! early write-back, `syncfs`, and positioned reads. Other platforms get
//! portable fallbacks.

use std::fs::File;

/// Reads exactly `buf.len()` bytes at `offset`, without moving the file's
/// position (so one thread can read what another is still appending).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    pub fn copy_file_range(src: &File, dst: &File, len: usize) -> std::io::Result<usize> {
        loop {
            // SAFETY: both descriptors are open files owned by the caller; null
            // offsets mean "use and advance each file's own position".
            let n = unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    std::ptr::null_mut(),
                    dst.as_raw_fd(),
                    std::ptr::null_mut(),
                    len,
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    pub fn is_unsupported(e: &std::io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM)
        )
    }

    pub fn start_writeback(f: &File, offset: u64, len: u64) {
        // SAFETY: plain syscall on an open descriptor. Failure only means the
        // final sync does all the work, so the result is ignored.
        unsafe {
            libc::sync_file_range(
                f.as_raw_fd(),
                offset as i64,
                len as i64,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }

    pub fn syncfs(f: &File) -> std::io::Result<()> {
        // SAFETY: plain syscall on an open descriptor.
        if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::fs::File;

    pub fn copy_file_range(_: &File, _: &File, _: usize) -> std::io::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub fn is_unsupported(e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::Unsupported
    }

    pub fn start_writeback(_: &File, _: u64, _: u64) {}

    /// Without `syncfs`, a full `sync` is the portable way to flush.
    pub fn syncfs(_: &File) -> std::io::Result<()> {
        std::process::Command::new("sync").status().map(|_| ())
    }
}

pub use imp::{copy_file_range, is_unsupported, start_writeback, syncfs};
