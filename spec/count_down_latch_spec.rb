# frozen_string_literal: true

RSpec.describe ProcessShared::CountDownLatch do
  it "counts down to 0 and no further" do
    l = described_class.new(2)
    expect(l.count).to eq(2)
    expect(l.count_down).to be_nil
    expect(l.count).to eq(1)
    l.count_down
    l.count_down
    expect(l.count).to eq(0)
    expect(described_class.new.count).to eq(1)
    expect(described_class.new(0).wait(0)).to be(true)
  end

  it "waits until 0, or returns false after the timeout" do
    l = described_class.new(1)
    expect(l.wait(0)).to be(false)
    expect(l.wait(0.02)).to be(false)
    l.count_down
    expect([l.wait, l.wait(0)]).to eq([true, true])
  end

  it "releases waiters in several processes when the last worker counts down" do
    l = described_class.new(3)
    results = ProcessShared::SharedArray.new(:int, 3)
    waiters = Array.new(2) { fork_child { exit!(l.wait(30) ? 0 : 2) } }
    workers = Array.new(3) do |i|
      fork_child do
        results[i] = i + 1
        l.count_down
      end
    end
    wait_children(workers + waiters)
    expect(results.to_a).to eq([1, 2, 3])
    expect(l.count).to eq(0)
  end

  it "rejects bad arguments and raises ClosedError after close" do
    expect { described_class.new(-1) }.to raise_error(ArgumentError)
    expect { described_class.new(2**31) }.to raise_error(ArgumentError)
    expect { described_class.new(1.0) }.to raise_error(TypeError)
    expect { described_class.new(1, 2) }.to raise_error(ArgumentError)
    expect(described_class.new(2**31 - 1).count).to eq(2**31 - 1)
    l = described_class.new(2)
    expect { l.wait(-0.5) }.to raise_error(ArgumentError)
    expect(l.inspect).to eq("#<ProcessShared::CountDownLatch count=2>")
    l.close
    l.close
    expect(l.inspect).to eq("#<ProcessShared::CountDownLatch (closed)>")
    %i[count_down count wait].each do |m|
      expect { l.public_send(m) }.to raise_error(ProcessShared::ClosedError)
    end
    opened = described_class.open(1) { |x| x.tap(&:count_down) }
    expect([opened.closed?, opened.inspect]).to eq([true, "#<ProcessShared::CountDownLatch (closed)>"])
  end
end
