//! A per-CPU free list of node indices, popped and pushed with `cmpxchg_current` on its head: the
//! test of compare-and-swap under interrupts shared by the hosted suite (`tests/hosted_interrupts.rs`,
//! signal handlers as interrupts) and the QEMU kernel (`tests/kernel`, timer interrupts). A handler
//! that pops and pushes back one node leaves the list as it found it, so an interrupted pop or push
//! stays correct (no ABA); a compare-and-swap that an interrupt could split would lose or duplicate
//! a node.

/// Defines, for `$cpus` CPUs of `$nodes` nodes each: `NIL`, `NODES`, the per-CPU head `HEAD`, the
/// links `NEXT`, and `pop()`, `push(node)`, `fill(cpu)` (this CPU's list: CPU `cpu`'s nodes) and
/// `holds_its_nodes(cpu, head)` (whether the list from `head` holds CPU `cpu`'s nodes, once each).
#[macro_export]
macro_rules! per_cpu_free_list {
    ($cpus:expr, $nodes:expr) => {
        /// The end of a free list.
        const NIL: u32 = u32::MAX;

        /// Free-list nodes per CPU.
        const NODES: usize = $nodes;

        /// The head of this CPU's free list.
        #[percpu::def_percpu]
        static HEAD: u32 = NIL;

        /// The link of each node (only the node's CPU, its thread or its interrupt handler, touches
        /// it).
        static NEXT: [core::sync::atomic::AtomicU32; $cpus * NODES] =
            [const { core::sync::atomic::AtomicU32::new(NIL) }; $cpus * NODES];

        /// Pops a node off this CPU's free list.
        fn pop() -> Option<u32> {
            loop {
                let head = HEAD.read_current();
                if head == NIL {
                    return None;
                }
                let next = NEXT[head as usize].load(core::sync::atomic::Ordering::Relaxed);
                if HEAD.cmpxchg_current(head, next).is_ok() {
                    return Some(head);
                }
            }
        }

        /// Pushes `node` onto this CPU's free list.
        fn push(node: u32) {
            loop {
                let head = HEAD.read_current();
                NEXT[node as usize].store(head, core::sync::atomic::Ordering::Relaxed);
                if HEAD.cmpxchg_current(head, node).is_ok() {
                    return;
                }
            }
        }

        /// Makes this CPU's list hold CPU `cpu`'s nodes.
        fn fill(cpu: usize) {
            HEAD.write_current(NIL);
            for node in cpu * NODES..(cpu + 1) * NODES {
                push(node as u32);
            }
        }

        /// Whether the list from `head` holds CPU `cpu`'s nodes, each once, and nothing else.
        fn holds_its_nodes(cpu: usize, head: u32) -> bool {
            let mut seen = [false; NODES];
            let mut node = head;
            for _ in 0..NODES {
                let index = (node as usize).wrapping_sub(cpu * NODES);
                if index >= NODES || seen[index] {
                    return false;
                }
                seen[index] = true;
                node = NEXT[node as usize].load(core::sync::atomic::Ordering::Relaxed);
            }
            node == NIL
        }
    };
}
