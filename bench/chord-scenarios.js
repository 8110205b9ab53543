// Chord's published scenarios as its bench/chord_benchmark.exs ran them (the version with one
// input, "Data"): what bench/collector-store.bench.js and bench/compare-builds.js run. One op of
// chordSingle(store) / chordMulti(store) is one batch as Chord timed it.

let unique = 0;

/** Chord's `large_context`: a group chat of 50 participants (made anew for every set, as Chord did). */
export function groupContext(groupId) {
  const now = Date.now();
  const time = (msAgo) => new Date(now - msAgo).toISOString();
  const participants = {};
  for (let i = 1; i <= 50; i++) {
    participants[`user_${i}`] = {
      user_id: `user_${i}`,
      username: `user_${i}_name`,
      avatar: `https://example.com/avatars/user_${i}_name.png`,
      status: i % 3 === 0 ? 'away' : 'active',
      last_seen: time(i * 60_000),
      typing: i % 10 === 0,
    };
  }
  return {
    group_id: groupId,
    group_name: `Team Engineering ${groupId}`,
    participants,
    metadata: {
      topic: `Daily Standup ${groupId}`,
      duration: `${10 + Math.floor(Math.random() * 21)} minutes`,
      created_by: 'user_1',
      created_at: time(3_600_000),
    },
    chat_history: Array.from({ length: 20 }, (_, k) => ({
      message_id: `msg_${k + 1}`,
      sender_id: `user_${((k + 1) % 50) + 1}`,
      timestamp: time((k + 1) * 120_000),
      content: `Message ${k + 1}: Lorem ipsum dolor sit amet.`,
    })),
  };
}

/** Chord's take_action(:stateless, …): by the task's index, a status update, a typing update or a sync from version 1. */
function takeAction(store, index, id, participant) {
  const u = ++unique;
  switch (index % 3) {
    case 0:
      return store.update(id, { participants: { [participant]: { status: `active_${u}` } } });
    case 1:
      return store.update(id, { participants: { [participant]: { typing: u % 2 === 0 } } });
    default:
      return store.sync(id, 1);
  }
}

/** Chord's single-context scenario: set the group's context, then 50 tasks at once. */
export function chordSingle(store) {
  const id = 'group:123';
  return async () => {
    await store.set(id, groupContext(id));
    const tasks = [];
    for (let i = 1; i <= 50; i++) tasks.push(takeAction(store, i, id, `user_${(i % 50) + 1}`));
    await Promise.all(tasks);
  };
}

/** Chord's 100-context scenario: the 100 contexts set one after another, then 10 tasks on each, all at once. */
export function chordMulti(store) {
  return async () => {
    for (let c = 1; c <= 100; c++) await store.set(`group:${c}`, groupContext(`group:${c}`));
    const tasks = [];
    for (let c = 1; c <= 100; c++) {
      for (let a = 1; a <= 10; a++)
        tasks.push(takeAction(store, a, `group:${c}`, `user_${1 + Math.floor(Math.random() * 50)}`));
    }
    await Promise.all(tasks);
  };
}
