//! One generator thread: its share of the clients on one edge-triggered epoll loop.
//! No cross-thread wake-ups, no allocation per message: bodies are written into one
//! reused buffer, each connection's output is coalesced and written once per wake-up,
//! input is read into one buffer per thread and decrypted in place.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rustix::event::epoll;

use super::endpoint::{Cx, Endpoint, Member, Notes};
use super::plan::{HEADER_LEN, Header, route};
use super::shared::{Phase, Shared};
use super::stats::{Counters, Histogram};

/// The settings every thread uses.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Server address.
    pub addr: SocketAddr,
    /// Messages per second per client; `None`: flat out.
    pub rate: Option<f64>,
    /// Body bytes.
    pub size: usize,
    /// Set TCP_QUICKACK after every read.
    pub quickack: bool,
    /// Connections in their handshake at once, per thread.
    pub connect_batch: usize,
    /// How long each setup phase may take.
    pub setup_timeout: Duration,
}

/// What one thread measured.
#[derive(Default)]
pub struct Outcome {
    /// Counters.
    pub counters: Counters,
    /// Latency of deliveries to other members.
    pub latency: Histogram,
    /// First refusal and cut-off.
    pub notes: Notes,
    /// When the last delivery arrived (ns since the common start).
    pub last_delivery_ns: u64,
}

struct Conn<E> {
    sock: TcpStream,
    ep: E,
    me: Member,
    /// The start of a frame or line not complete yet.
    rbuf: Vec<u8>,
    /// The last write did not take everything: wait for EPOLLOUT.
    blocked: bool,
    /// Queued all its messages (or was cut off).
    done: bool,
    /// Its end was counted.
    dead: bool,
}

/// Builds the endpoint of client `c`.
pub type MakeEndpoint<'a, E> = dyn Fn(&mut Cx<'_>, u32, &Member) -> Result<E, String> + Sync + 'a;

/// One generator thread.
pub struct Worker<'a, E> {
    shared: &'a Shared,
    settings: &'a Settings,
    clients: Vec<u32>,
    make: &'a MakeEndpoint<'a, E>,
    conns: Vec<Conn<E>>,
    epfd: OwnedFd,
    events: Vec<epoll::Event>,
    scratch: Vec<u8>,
    body: Vec<u8>,
    timers: BinaryHeap<Reverse<(u64, u32)>>,
    out: Outcome,
    running: bool,
    last_tick_ns: u64,
    published: (u64, u64, u64),
}

/// Cove's clock from the bench's: microseconds, never zero.
fn core_now(now_ns: u64) -> cove_core::Instant {
    cove_core::Instant(1_000_000 + now_ns / 1000)
}

fn cx<'b>(shared: &'b Shared, out: &'b mut Outcome, running: bool) -> Cx<'b> {
    let now_ns = shared.now_ns();
    Cx {
        shared,
        now_ns,
        core_now: core_now(now_ns),
        counters: &mut out.counters,
        latency: &mut out.latency,
        notes: &mut out.notes,
        running,
        last_delivery_ns: &mut out.last_delivery_ns,
    }
}

fn flush<E: Endpoint>(c: &mut Conn<E>) {
    while !c.blocked && !c.ep.closed() {
        let pending = c.ep.output();
        if pending.is_empty() {
            return;
        }
        match (&c.sock).write(pending) {
            Ok(n) => {
                let all = n == pending.len();
                c.ep.advance(n);
                c.blocked = !all;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => c.blocked = true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => c.ep.ended(&format!("write failed: {e}")),
        }
    }
}

impl<'a, E: Endpoint> Worker<'a, E> {
    /// A thread for `clients`.
    pub fn new(
        shared: &'a Shared,
        settings: &'a Settings,
        clients: Vec<u32>,
        make: &'a MakeEndpoint<'a, E>,
    ) -> Result<Worker<'a, E>, String> {
        let epfd =
            epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll_create: {e}"))?;
        let mut body = vec![b'.'; settings.size.max(HEADER_LEN)];
        body.truncate(settings.size.max(HEADER_LEN));
        Ok(Worker {
            shared,
            settings,
            timers: BinaryHeap::with_capacity(clients.len()),
            conns: Vec::with_capacity(clients.len()),
            clients,
            make,
            epfd,
            events: Vec::with_capacity(1024),
            scratch: vec![0; 256 * 1024],
            body,
            out: Outcome::default(),
            running: false,
            last_tick_ns: 0,
            published: (0, 0, 0),
        })
    }

    /// Runs the setup phases and the measured run; returns what was measured.
    pub fn run(mut self) -> Outcome {
        if let Err(e) = self.setup() {
            self.shared.fail(e);
            return self.out;
        }
        self.measure();
        self.out
    }

    fn setup(&mut self) -> Result<(), String> {
        self.connect_all()?;
        if !self.shared.barrier(Phase::Connect) {
            return Err(String::new());
        }
        let shared = self.shared;
        let plan = &shared.plan;
        let mut todo = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            for (j, &r) in c.me.rooms.iter().enumerate() {
                todo.push((i, j, plan.creates(c.me.client, r)));
            }
        }
        for create in [true, false] {
            for &(i, j, creates) in &todo {
                if creates != create {
                    continue;
                }
                let mut cx = cx(self.shared, &mut self.out, false);
                let c = &mut self.conns[i];
                if create {
                    c.ep.create(&mut cx, &c.me, j);
                } else {
                    c.ep.join(&mut cx, &c.me, j);
                }
                flush(c);
            }
            let what = if create {
                "creating the rooms"
            } else {
                "joining the rooms"
            };
            self.settle(what, |w| w.conns.iter().all(|c| c.ep.status().pending == 0))?;
            let phase = if create { Phase::Create } else { Phase::Join };
            if !self.shared.barrier(phase) {
                return Err(String::new());
            }
        }
        Ok(())
    }

    /// Polls until `done`, a failure, or the setup timeout.
    fn settle(&mut self, what: &str, done: impl Fn(&Self) -> bool) -> Result<(), String> {
        let deadline = self.shared.now_ns() + self.settings.setup_timeout.as_nanos() as u64;
        loop {
            self.check_failures()?;
            if done(self) {
                return Ok(());
            }
            if self.shared.aborted() {
                return Err(String::new());
            }
            if self.shared.now_ns() > deadline {
                return Err(format!(
                    "{what} took longer than {} s: the server does not answer",
                    self.settings.setup_timeout.as_secs()
                ));
            }
            self.poll(10)?;
        }
    }

    fn check_failures(&self) -> Result<(), String> {
        for c in &self.conns {
            if let Some(f) = c.ep.status().failure {
                return Err(format!("client {}: {f}", c.me.client));
            }
        }
        Ok(())
    }

    fn connect_all(&mut self) -> Result<(), String> {
        let deadline = self.shared.now_ns() + self.settings.setup_timeout.as_nanos() as u64;
        let mut next = 0;
        loop {
            self.check_failures()?;
            let unready = self.conns.iter().filter(|c| !c.ep.status().ready).count();
            let ready = self.conns.len() - unready;
            let mut started = 0;
            while next < self.clients.len() && unready + started < self.settings.connect_batch {
                self.connect(self.clients[next])?;
                next += 1;
                started += 1;
            }
            if next == self.clients.len() && unready == 0 && started == 0 {
                return Ok(());
            }
            if self.shared.aborted() {
                return Err(String::new());
            }
            if self.shared.now_ns() > deadline {
                return Err(format!(
                    "{ready} of {} clients of a thread logged in after {} s: the server does not answer",
                    self.clients.len(),
                    self.settings.setup_timeout.as_secs()
                ));
            }
            let before = ready as u64;
            self.poll(10)?;
            let after = self.conns.iter().filter(|c| c.ep.status().ready).count() as u64;
            self.shared
                .setup_progress
                .fetch_add(after.saturating_sub(before), Ordering::Relaxed);
        }
    }

    fn connect(&mut self, client: u32) -> Result<(), String> {
        let addr = self.settings.addr;
        let sock = TcpStream::connect(addr).map_err(|e| {
            let hint = match e.kind() {
                ErrorKind::ConnectionRefused => ": is the server running there?",
                _ if e.raw_os_error() == Some(24) => ": too many open files (raise `ulimit -n`)",
                _ => "",
            };
            format!("cannot connect to {addr}: {e}{hint}")
        })?;
        let setup = |s: &TcpStream| -> std::io::Result<()> {
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            if self.settings.quickack {
                rustix::net::sockopt::set_tcp_quickack(s, true)?;
            }
            Ok(())
        };
        setup(&sock).map_err(|e| format!("socket options: {e}"))?;
        let key = self.conns.len() as u64;
        let flags = epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET;
        epoll::add(&self.epfd, &sock, epoll::EventData::new_u64(key), flags)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        let me = Member::new(&self.shared.plan, client);
        let mut cx = cx(self.shared, &mut self.out, false);
        let ep = (self.make)(&mut cx, client, &me)?;
        let mut conn = Conn {
            sock,
            ep,
            me,
            rbuf: Vec::new(),
            blocked: false,
            done: false,
            dead: false,
        };
        flush(&mut conn);
        self.conns.push(conn);
        Ok(())
    }

    /// Waits for events at most `timeout_ms` and handles them.
    fn poll(&mut self, timeout_ms: u64) -> Result<(), String> {
        let ts = rustix::time::Timespec {
            tv_sec: (timeout_ms / 1000) as i64,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as i64,
        };
        self.events.clear();
        match epoll::wait(
            &self.epfd,
            rustix::buffer::spare_capacity(&mut self.events),
            Some(&ts),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for k in 0..self.events.len() {
            let ev = self.events[k];
            let (flags, data) = (ev.flags, ev.data);
            let i = data.u64() as usize;
            if i >= self.conns.len() {
                continue;
            }
            if flags.contains(epoll::EventFlags::OUT) {
                self.conns[i].blocked = false;
            }
            self.service(i);
        }
        Ok(())
    }

    /// Reads what connection `i` has, answers it, sends more if flat out, writes.
    fn service(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.ep.closed() {
            return;
        }
        loop {
            let keep = c.rbuf.len();
            self.scratch[..keep].copy_from_slice(&c.rbuf);
            let room = self.scratch.len() - keep;
            match (&c.sock).read(&mut self.scratch[keep..]) {
                Ok(0) => {
                    c.ep.ended("the server closed the connection");
                    break;
                }
                Ok(n) => {
                    let mut cx = cx(self.shared, &mut self.out, self.running);
                    let total = keep + n;
                    let mut off = 0;
                    while off < total && !c.ep.closed() {
                        let used =
                            c.ep.input(&mut self.scratch[off..total], &mut cx, &mut c.me);
                        if used == 0 {
                            break;
                        }
                        off += used;
                    }
                    c.rbuf.clear();
                    c.rbuf.extend_from_slice(&self.scratch[off..total]);
                    c.ep.after_input(&mut cx);
                    if self.settings.quickack {
                        let _ = rustix::net::sockopt::set_tcp_quickack(&c.sock, true);
                    }
                    if n < room || c.ep.closed() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    c.ep.ended(&format!("read failed: {e}"));
                    break;
                }
            }
        }
        flush(c);
        if self.running && self.settings.rate.is_none() {
            self.pump(i);
        }
        self.note_end(i);
    }

    /// Queues one message of connection `i` into its output; false if it had no room.
    fn queue_one(&mut self, i: usize, now_ns: u64) -> bool {
        let c = &mut self.conns[i];
        let (j, seq) = route(c.me.rooms.len(), c.me.sent);
        let Some(&room) = c.me.rooms.get(j) else {
            return false;
        };
        Header {
            sender: c.me.client,
            room,
            seq,
            sent_ns: now_ns,
        }
        .write(&mut self.body);
        let mut cx = cx(self.shared, &mut self.out, self.running);
        if !c.ep.queue(&mut cx, j, &self.body) {
            return false;
        }
        c.me.sent += 1;
        self.out.counters.sent += 1;
        true
    }

    /// Flat out: queue and write until the socket is full or all messages are sent.
    fn pump(&mut self, i: usize) {
        let msgs = self.shared.plan.msgs;
        loop {
            let c = &self.conns[i];
            if c.done || c.blocked || c.ep.closed() {
                return;
            }
            let now_ns = self.shared.now_ns();
            let mut queued = 0;
            while self.conns[i].me.sent < msgs && self.queue_one(i, now_ns) {
                queued += 1;
            }
            let c = &mut self.conns[i];
            if c.me.sent >= msgs {
                c.done = true;
                self.shared.senders_done.fetch_add(1, Ordering::Relaxed);
            }
            flush(c);
            if queued == 0 {
                return;
            }
        }
    }

    /// Counts a connection that ended during the run (once).
    fn note_end(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if !c.ep.closed() || c.dead {
            return;
        }
        c.dead = true;
        if self.running {
            self.out.counters.cut_off += 1;
            if self.out.notes.cut_off.is_none() {
                self.out.notes.cut_off = c.ep.status().failure;
            }
        }
        if !c.done && !c.me.rooms.is_empty() {
            c.done = true;
            self.shared.senders_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn measure(&mut self) {
        // The main thread starts the run once it has read the CPU clocks.
        let start = loop {
            let start = self.shared.run_start_ns.load(Ordering::SeqCst);
            if start != 0 {
                break start;
            }
            if self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        };
        self.running = true;
        self.last_tick_ns = start;
        let senders = self.shared.plan.senders();
        let msgs = self.shared.plan.msgs;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if c.me.rooms.is_empty() || msgs == 0 {
                if !c.me.rooms.is_empty() {
                    c.done = true;
                    self.shared.senders_done.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            match self.settings.rate {
                None => self.pump(i),
                Some(rate) => {
                    let interval = 1e9 / rate;
                    let phase = interval * f64::from(c.me.client) / f64::from(senders.max(1));
                    self.timers.push(Reverse((start + phase as u64, i as u32)));
                }
            }
        }
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = self.shared.now_ns();
            self.fire_timers(now);
            let wait_ms = match self.timers.peek() {
                // Rounded up: waking early would spin until the timer is due.
                Some(Reverse((due, _))) => due.saturating_sub(now).div_ceil(1_000_000).min(50),
                None => 50,
            };
            if self.poll(wait_ms).is_err() {
                break;
            }
            let now = self.shared.now_ns();
            if now.saturating_sub(self.last_tick_ns) >= 1_000_000_000 {
                self.last_tick_ns = now;
                self.tick_all();
            }
            self.publish();
        }
        self.publish();
    }

    fn fire_timers(&mut self, now: u64) {
        let (Some(rate), msgs) = (self.settings.rate, self.shared.plan.msgs) else {
            return;
        };
        let interval = (1e9 / rate) as u64;
        while let Some(&Reverse((due, i))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let i = i as usize;
            if self.conns[i].ep.closed() {
                continue;
            }
            if !self.queue_one(i, now) {
                // The output is full (the server is not reading): try again soon.
                self.timers.push(Reverse((now + 1_000_000, i as u32)));
                continue;
            }
            let c = &mut self.conns[i];
            flush(c);
            if c.me.sent >= msgs {
                c.done = true;
                self.shared.senders_done.fetch_add(1, Ordering::Relaxed);
            } else {
                self.timers.push(Reverse((due + interval, i as u32)));
            }
            self.note_end(i);
        }
    }

    fn tick_all(&mut self) {
        for i in 0..self.conns.len() {
            let mut cx = cx(self.shared, &mut self.out, self.running);
            let c = &mut self.conns[i];
            if c.ep.closed() {
                continue;
            }
            c.ep.tick(&mut cx);
            flush(c);
            self.note_end(i);
        }
    }

    /// Adds what changed since the last call to the shared progress counters.
    fn publish(&mut self) {
        let k = &self.out.counters;
        let received = k.deliveries + k.echoes;
        let (sent0, recv0, _) = self.published;
        self.shared
            .sent
            .fetch_add(k.sent - sent0, Ordering::Relaxed);
        self.shared
            .received
            .fetch_add(received - recv0, Ordering::Relaxed);
        self.published = (k.sent, received, 0);
    }
}
