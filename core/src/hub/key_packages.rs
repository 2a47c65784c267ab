//! The KeyPackage directory: users upload signed MLS KeyPackages so that others can add
//! them to groups while they are offline. Each one-time package is handed out once,
//! durably; after the last one, the user's last-resort package (never used up). The
//! owner is told when the stock runs low. Bounded per user and in bytes overall.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{ConnId, Hub, Reply};
use crate::store::{KeyPackageRecord, StoreOp};
use crate::wire::ErrorCode;
use crate::wire::mls::key_package_header;

impl Hub {
    /// Stores `packages` for `name` after checking that each is `name`'s: its leaf's
    /// signature key is the account's identity key and its basic credential names the
    /// account. All or nothing.
    pub(super) fn upload_key_packages(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        last_resort: bool,
        packages: Vec<Arc<[u8]>>,
    ) {
        let limits = self.config.mls.clone();
        let Some(user) = self.users.get(name) else {
            return;
        };
        if packages.is_empty() || (last_resort && packages.len() != 1) {
            return self.error(conn, req, ErrorCode::InvalidFormat);
        }
        for kp in &packages {
            let Ok(h) = key_package_header(kp) else {
                return self.error(conn, req, ErrorCode::NotMls);
            };
            if h.signature_key != user.key || h.identity != name.as_bytes() {
                return self.error(conn, req, ErrorCode::KeyPackageRefused);
            }
        }
        if last_resort {
            return self.replace_last_resort(conn, name, req, packages);
        }
        // Each package once: not one the user holds already, nor twice in this upload.
        let mut fresh: Vec<Arc<[u8]>> = Vec::with_capacity(packages.len());
        for kp in packages {
            if !user.key_packages.contains(&kp) && !fresh.contains(&kp) {
                fresh.push(kp);
            }
        }
        let added: usize = fresh.iter().map(|kp| kp.len()).sum();
        let over_count = user.key_packages.len() + fresh.len() > limits.key_packages_per_user;
        if over_count || self.key_package_bytes + added > limits.key_package_bytes_total {
            return self.error(conn, req, ErrorCode::LimitReached);
        }
        self.key_package_bytes += added;
        let Some(user) = self.users.get_mut(name) else {
            return;
        };
        for package in fresh {
            user.key_packages.push_back(package.clone());
            self.store_ops
                .push_back(StoreOp::KeyPackageAdded(KeyPackageRecord {
                    name: name.clone(),
                    package,
                    last_resort: false,
                }));
        }
        self.send(conn, Reply::Ok { req });
    }

    /// Replaces `name`'s last-resort package with the one in `packages` (checked).
    fn replace_last_resort(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        packages: Vec<Arc<[u8]>>,
    ) {
        let budget = self.config.mls.key_package_bytes_total;
        let Some(user) = self.users.get(name) else {
            return;
        };
        let Some(package) = packages.into_iter().next() else {
            return self.error(conn, req, ErrorCode::InvalidFormat);
        };
        if user.last_resort.as_ref() != Some(&package) {
            let freed = user.last_resort.as_ref().map_or(0, |kp| kp.len());
            let total = self.key_package_bytes - freed + package.len();
            if total > budget {
                return self.error(conn, req, ErrorCode::LimitReached);
            }
            self.key_package_bytes = total;
            if let Some(user) = self.users.get_mut(name) {
                user.last_resort = Some(package.clone());
            }
            self.store_ops
                .push_back(StoreOp::KeyPackageAdded(KeyPackageRecord {
                    name: name.clone(),
                    package,
                    last_resort: true,
                }));
        }
        self.send(conn, Reply::Ok { req });
        // A new user of the directory learns at once that its one-time stock is empty.
        self.warn_key_packages_low(name);
    }

    /// Hands out one of `who`'s KeyPackages: the oldest one-time package (used up,
    /// durably), else the last-resort one.
    pub(super) fn fetch_key_package(&mut self, conn: ConnId, req: u32, who: Arc<str>) {
        let Some((owner, _)) = self.users.get_key_value(&who) else {
            return self.error(conn, req, ErrorCode::UserNotFound);
        };
        let owner = owner.clone();
        let Some(user) = self.users.get_mut(&owner) else {
            return;
        };
        let package = if let Some(kp) = user.key_packages.pop_front() {
            self.key_package_bytes -= kp.len();
            self.store_ops.push_back(StoreOp::KeyPackageTaken {
                name: owner.clone(),
                package: kp.clone(),
            });
            kp
        } else if let Some(kp) = &user.last_resort {
            kp.clone()
        } else {
            return self.error(conn, req, ErrorCode::NoKeyPackage);
        };
        self.send(
            conn,
            Reply::KeyPackage {
                req,
                name: owner.clone(),
                package,
            },
        );
        self.warn_key_packages_low(&owner);
    }

    /// Tells `name`, if online, that its one-time stock is below the low-water mark.
    /// Only users of the directory are told: those who keep a last-resort package.
    pub(super) fn warn_key_packages_low(&mut self, name: &Arc<str>) {
        let low = self.config.mls.key_packages_low;
        let Some(user) = self.users.get(name) else {
            return;
        };
        if user.last_resort.is_none() {
            return;
        }
        let (Some(conn), remaining) = (user.conn, user.key_packages.len()) else {
            return;
        };
        if remaining < low {
            let remaining = u16::try_from(remaining).unwrap_or(u16::MAX);
            self.send(conn, Reply::KeyPackagesLow { remaining });
        }
    }

    /// Puts a stored KeyPackage back (at restart).
    pub(super) fn restore_key_package(&mut self, record: KeyPackageRecord) {
        let Some(user) = self.users.get_mut(&record.name) else {
            return;
        };
        let len = record.package.len();
        if record.last_resort {
            let old = user.last_resort.replace(record.package);
            self.key_package_bytes -= old.map_or(0, |kp| kp.len());
        } else if !user.key_packages.contains(&record.package) {
            user.key_packages.push_back(record.package);
        } else {
            return;
        }
        self.key_package_bytes += len;
    }

    /// One-time KeyPackages stored for `name` (for tests and checks).
    pub fn key_packages_of(&self, name: &str) -> usize {
        self.users.get(name).map_or(0, |u| u.key_packages.len())
    }
}
