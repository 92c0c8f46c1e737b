mod oauth1_oracle;
