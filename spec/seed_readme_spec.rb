# frozen_string_literal: true

require "open3"
require "rbconfig"

RSpec.describe "the seed README's examples, run verbatim" do
  def run_example(name)
    out, err, status = Open3.capture3(RbConfig.ruby, File.expand_path("seed/#{name}", __dir__))
    expect(status.success?).to be(true), "#{name} failed: #{err}"
    out
  end

  it "Usage: two processes increment and decrement under one Mutex" do
    out = run_example("readme_usage.rb")
    expect(out).to end_with("value should be zero: 0\n")
    expect(out.scan(/incrementing/).size).to eq(10)
    expect(out.scan(/decrementing/).size).to eq(10)
  end

  it "Transfer Objects Across Processes: a child writes, the parent reads" do
    expect(run_example("readme_transfer.rb")).to eq(%(transferred: ["a", "b"]\n))
  end
end
