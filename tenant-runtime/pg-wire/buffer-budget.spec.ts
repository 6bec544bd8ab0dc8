import { BufferBudget } from './buffer-budget';

describe('BufferBudget', () => {
  it('caps each tenant and the replica, and gives bytes back', () => {
    const b = new BufferBudget(100, 60);
    expect(b.take('a', 60)).toBe(true);
    expect(b.take('a', 1)).toBe(false); // a's share
    expect(b.take('b', 41)).toBe(false); // the replica's
    expect(b.take('b', 40)).toBe(true);
    expect(b.bytes).toBe(100);
    b.give('a', 30);
    expect(b.take('a', 30)).toBe(true);
    b.give('a', 60);
    b.give('b', 40);
    expect(b.bytes).toBe(0);
    expect(b.take('b', 60)).toBe(true);
  });
});
