//! Opening a metadata image of 100,000 partitions, as a voter does on restart from its
//! snapshot: JSON decode plus the invariant check. `cargo bench -p strata-benches --bench
//! metadata_image`.

use std::collections::BTreeMap;

use controller::{Command, MetadataImage, Uuid};
use criterion::{criterion_group, criterion_main, Criterion};

/// 1,000 topics of 100 partitions, 3 replicas each, over 6 brokers.
fn big_image() -> MetadataImage {
    let mut image = MetadataImage::new();
    for id in 1..=6 {
        image
            .apply(&Command::RegisterBroker {
                node_id: id,
                host: format!("127.0.0.{id}"),
                port: 9092,
                rack: None,
                listeners: Vec::new(),
            })
            .expect("register");
    }
    for t in 0..1000 {
        let assignments = (0..100)
            .map(|p| (0..3).map(|r| (t + p + r) % 6 + 1).collect())
            .collect();
        image
            .apply(&Command::CreateTopic {
                name: format!("topic-{t:04}"),
                topic_id: Uuid::new_v4(),
                assignments,
                configs: BTreeMap::new(),
            })
            .expect("create");
    }
    image
}

fn open_image(c: &mut Criterion) {
    let image = big_image();
    let json = serde_json::to_vec(&image).expect("encode");
    eprintln!("snapshot of 100,000 partitions: {} MiB", json.len() >> 20);
    let mut group = c.benchmark_group("metadata_image");
    group.sample_size(10);
    group.bench_function("open_100k_partitions", |b| {
        b.iter(|| {
            let image: MetadataImage = serde_json::from_slice(&json).expect("decode");
            image.check_invariants().expect("valid");
            image
        })
    });
    group.bench_function("encode_100k_partitions", |b| {
        b.iter(|| serde_json::to_vec(&image).expect("encode"))
    });
    group.finish();
}

criterion_group!(benches, open_image);
criterion_main!(benches);
