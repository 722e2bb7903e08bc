# frozen_string_literal: true

RSpec.describe ProcessShared::Counters do
  it "holds size counters starting at 0" do
    c = described_class.new(3)
    expect([c.size, c.length, c.to_a]).to eq([3, 3, [0, 0, 0]])
    expect(described_class.new(0).to_a).to eq([])
    expect(described_class.new(1).to_a).to eq([0])
  end

  it "increments, decrements, reads and writes by index, returning new values" do
    c = described_class.new(3)
    expect(c.incr(0)).to eq(1)
    expect(c.incr(0, 9)).to eq(10)
    expect(c.decr(1)).to eq(-1)
    expect(c.decr(1, -4)).to eq(3)
    expect(c[2] = 7).to eq(7)
    expect([c[0], c[1], c[2]]).to eq([10, 3, 7])
    expect(c.to_a).to eq([10, 3, 7])
  end

  it "counts negative indexes from the end and raises IndexError outside" do
    c = described_class.new(3)
    c.incr(-1)
    expect(c.to_a).to eq([0, 0, 1])
    expect(c[-3]).to eq(0)
    expect { c[3] }.to raise_error(IndexError, /3/)
    expect { c[-4] }.to raise_error(IndexError)
    expect { c.incr(2**64) }.to raise_error(IndexError)
    expect { described_class.new(0)[0] }.to raise_error(IndexError)
    expect { c["0"] }.to raise_error(TypeError)
    expect { c[0.0] }.to raise_error(TypeError)
  end

  it "wraps like C's int64_t and rejects values outside it, changing nothing" do
    c = described_class.new(1)
    c[0] = 2**63 - 1
    expect(c.incr(0)).to eq(-2**63)
    expect { c[0] = 2**63 }.to raise_error(RangeError)
    expect { c.incr(0, 2**63) }.to raise_error(RangeError)
    expect { c.decr(0, "1") }.to raise_error(TypeError)
    expect { c.incr }.to raise_error(ArgumentError)
    expect { c.incr(0, 1, 2) }.to raise_error(ArgumentError)
    expect(c[0]).to eq(-2**63)
  end

  it "rejects bad sizes" do
    expect { described_class.new(-1) }.to raise_error(ArgumentError)
    expect { described_class.new(2**24 + 1) }.to raise_error(ArgumentError)
    expect { described_class.new(2**80) }.to raise_error(ArgumentError)
    expect { described_class.new("3") }.to raise_error(TypeError)
    expect { described_class.new }.to raise_error(ArgumentError)
  end

  it "is Enumerable" do
    c = described_class.new(4)
    4.times { |i| c.incr(i, i * 10) }
    expect(c.sum).to eq(60)
    expect(c.each.to_a).to eq([0, 10, 20, 30])
    expect(c.each.size).to eq(4)
    expect(c.max).to eq(30)
  end

  it "shows its size and first values in #inspect" do
    c = described_class.new(2)
    expect(c.inspect).to eq("#<ProcessShared::Counters size=2 [0, 0]>")
    expect(described_class.new(12).inspect).to eq(
      "#<ProcessShared::Counters size=12 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...]>"
    )
  end

  it "counts exactly when processes update them at once" do
    c = described_class.new(4)
    pids = Array.new(4) do |i|
      fork_child do
        10_000.times do
          c.incr(i)
          c.decr(3 - i, 2)
          c.incr(-1, 0)
        end
      end
    end
    wait_children(pids)
    expect(c.to_a).to eq([10_000 - 20_000] * 4)
  end

  it "closes idempotently and raises ClosedError afterwards; .open closes" do
    c = described_class.new(2)
    c.close
    c.close
    expect(c).to be_closed
    expect(c.inspect).to eq("#<ProcessShared::Counters size=2 (closed)>")
    expect(c.size).to eq(2)
    expect { c[0] }.to raise_error(ProcessShared::ClosedError)
    expect { c[5] }.to raise_error(ProcessShared::ClosedError) # closed first, then the index
    expect { c[0] = 1 }.to raise_error(ProcessShared::ClosedError)
    expect { c.incr(0) }.to raise_error(ProcessShared::ClosedError)
    expect { c.decr(0) }.to raise_error(ProcessShared::ClosedError)
    expect { c.to_a }.to raise_error(ProcessShared::ClosedError)
    expect { c.sum }.to raise_error(ProcessShared::ClosedError)
    opened = nil
    expect(described_class.open(3) { |x| (opened = x).incr(2) }).to eq(1)
    expect(opened).to be_closed
  end

  it "is shared with a child, which may close its copy without affecting the parent" do
    c = described_class.new(100)
    wait_child(fork_child do
      c.incr(99, 5)
      c.close
    end)
    expect(c[99]).to eq(5)
  end
end
