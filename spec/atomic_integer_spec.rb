# frozen_string_literal: true

RSpec.describe ProcessShared::AtomicInteger do
  max = 2**63 - 1
  min = -2**63

  it "starts at 0 or the given value" do
    expect(described_class.new.value).to eq(0)
    expect(described_class.new(-7).value).to eq(-7)
    expect(described_class.new(max).value).to eq(max)
    expect(described_class.new(min).value).to eq(min)
  end

  it "increments and decrements by 1 or a delta, returning the new value" do
    a = described_class.new(10)
    expect(a.increment).to eq(11)
    expect(a.increment(5)).to eq(16)
    expect(a.decrement).to eq(15)
    expect(a.decrement(20)).to eq(-5)
    expect(a.increment(-5)).to eq(-10)
    expect([a.up, a.down]).to eq([-9, -10])
  end

  it "wraps like C's int64_t" do
    a = described_class.new(max)
    expect(a.increment).to eq(min)
    expect(a.decrement).to eq(max)
    expect(a.increment(max)).to eq(-2)
  end

  it "sets, compares-and-sets and swaps" do
    a = described_class.new
    expect(a.value = 3).to eq(3)
    expect(a.compare_and_set(2, 9)).to be(false)
    expect(a.value).to eq(3)
    expect(a.compare_and_set(3, 9)).to be(true)
    expect(a.get_and_set(4)).to eq(9)
    expect([a.get, a.to_i]).to eq([4, 4])
    a.set(min)
    expect(a.value).to eq(min)
  end

  it "updates with a block, returning the new value" do
    a = described_class.new(6)
    expect(a.update { |v| v * 7 }).to eq(42)
    expect(a.value).to eq(42)
  end

  it "changes nothing when the update block raises or returns a bad value" do
    a = described_class.new(1)
    expect { a.update { raise "no" } }.to raise_error(RuntimeError, "no")
    expect { a.update { "2" } }.to raise_error(TypeError)
    expect { a.update { 2**64 } }.to raise_error(RangeError)
    expect { a.update }.to raise_error(ArgumentError)
    expect(a.value).to eq(1)
  end

  it "rejects non-Integers with TypeError and values outside int64 with RangeError, changing nothing" do
    a = described_class.new(1)
    expect { described_class.new(2**63) }.to raise_error(RangeError)
    expect { described_class.new(min - 1) }.to raise_error(RangeError)
    expect { described_class.new(1.0) }.to raise_error(TypeError)
    expect { described_class.new(nil) }.to raise_error(TypeError)
    expect { described_class.new(1, 2) }.to raise_error(ArgumentError)
    expect { a.value = 2**63 }.to raise_error(RangeError)
    expect { a.value = "3" }.to raise_error(TypeError)
    expect { a.increment(2**63) }.to raise_error(RangeError)
    expect { a.increment(1.5) }.to raise_error(TypeError)
    expect { a.decrement(:x) }.to raise_error(TypeError)
    expect { a.increment(1, 2) }.to raise_error(ArgumentError)
    expect { a.compare_and_set(1, 2**63) }.to raise_error(RangeError)
    expect { a.compare_and_set(nil, 2) }.to raise_error(TypeError)
    expect { a.get_and_set(2**100) }.to raise_error(RangeError)
    expect(a.value).to eq(1)
  end

  it "counts exactly when processes and threads increment at once" do
    a = described_class.new
    pids = Array.new(4) do
      fork_child do
        Array.new(2) { Thread.new { 5_000.times { a.increment } } }.each(&:join)
        5_000.times { a.decrement(3) }
      end
    end
    wait_children(pids)
    expect(a.value).to eq(4 * ((2 * 5_000) - (3 * 5_000)))
    a.value = 0
    pids = Array.new(4) { |i| fork_child { 2_000.times { a.update { |v| v + i + 1 } } } }
    wait_children(pids)
    expect(a.value).to eq(2_000 * (1 + 2 + 3 + 4))
  end

  it "closes idempotently and raises ClosedError afterwards; .open closes" do
    a = described_class.new(5)
    expect(a.inspect).to eq("#<ProcessShared::AtomicInteger value=5>")
    a.close
    a.close
    expect(a).to be_closed
    expect(a.inspect).to eq("#<ProcessShared::AtomicInteger (closed)>")
    %i[value increment decrement get up].each do |m|
      expect { a.public_send(m) }.to raise_error(ProcessShared::ClosedError)
    end
    expect { a.value = 1 }.to raise_error(ProcessShared::ClosedError)
    expect { a.compare_and_set(5, 6) }.to raise_error(ProcessShared::ClosedError)
    expect { a.get_and_set(1) }.to raise_error(ProcessShared::ClosedError)
    expect { a.update { 1 } }.to raise_error(ProcessShared::ClosedError)
    opened = nil
    expect(described_class.open(3) { |x| (opened = x).increment }).to eq(4)
    expect(opened).to be_closed
  end

  it "is shared with a child, which may close its copy without affecting the parent" do
    a = described_class.new(1)
    wait_child(fork_child do
      a.increment(41)
      a.close
    end)
    expect(a.value).to eq(42)
  end
end
