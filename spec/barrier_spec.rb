# frozen_string_literal: true

RSpec.describe ProcessShared::Barrier do
  it "keeps processes in step, round after round" do
    b = described_class.new(3)
    rounds = 50
    entered = ProcessShared::SharedArray.new(:int, 3)
    pids = Array.new(3) do |i|
      fork_child do
        rounds.times do |round|
          entered[i] = round + 1
          exit!(2) unless b.wait(30)
          exit!(3) if entered.to_a.min < round + 1 # somebody had not entered this round yet
        end
      end
    end
    wait_children(pids)
    expect(entered.to_a).to eq([rounds] * 3)
    expect([b.number_waiting, b.broken?, b.parties]).to eq([0, false, 3])
  end

  it "trips at once with one party" do
    b = described_class.new(1)
    expect([b.wait, b.wait(0)]).to eq([true, true])
  end

  it "counts who waits, and a timeout breaks it for everyone until reset" do
    b = described_class.new(3)
    t = Thread.new { b.wait(30) }
    sleep 0.001 until b.number_waiting == 1
    expect(b.wait(0.05)).to be(false) # times out: broken
    expect(t.value).to be(false)
    expect(b.broken?).to be(true)
    expect(b.number_waiting).to eq(0)
    expect(b.wait).to be(false) # arriving at a broken barrier
    expect(b.reset).to be_nil
    expect(b.broken?).to be(false)
    threads = Array.new(2) { Thread.new { b.wait(30) } }
    expect(b.wait(30)).to be(true)
    expect(threads.map(&:value)).to eq([true, true])
  end

  it "gives false to those waiting when reset" do
    b = described_class.new(2)
    t = Thread.new { b.wait(30) }
    sleep 0.001 until b.number_waiting == 1
    b.reset
    expect(t.value).to be(false)
    expect([b.broken?, b.number_waiting]).to eq([false, 0])
  end

  it "rejects bad arguments and raises ClosedError after close" do
    expect { described_class.new(0) }.to raise_error(ArgumentError)
    expect { described_class.new(65_536) }.to raise_error(ArgumentError)
    expect { described_class.new("2") }.to raise_error(TypeError)
    expect { described_class.new }.to raise_error(ArgumentError)
    b = described_class.new(2)
    expect { b.wait(-1) }.to raise_error(ArgumentError)
    expect(b.number_waiting).to eq(0) # a bad timeout is refused before arriving
    expect(b.inspect).to eq("#<ProcessShared::Barrier parties=2 waiting=0 broken=false>")
    b.close
    b.close
    expect(b.inspect).to eq("#<ProcessShared::Barrier (closed)>")
    %i[wait reset broken? parties number_waiting].each do |m|
      expect { b.public_send(m) }.to raise_error(ProcessShared::ClosedError)
    end
    expect(described_class.open(1) { |x| x.wait && x }).to be_closed
  end
end
