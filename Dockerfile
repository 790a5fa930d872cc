# Build stage: compiles TypeScript and better-sqlite3's native module.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build-console.mjs ./scripts/
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: only dist/, production node_modules and the example config.
FROM node:20-bookworm-slim
ENV NODE_ENV=production BRIDGE_CONFIG=/etc/planasonix-bridge/config.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/example.yaml /etc/planasonix-bridge/config.yaml
RUN mkdir -p /var/lib/planasonix-bridge && chown node:node /var/lib/planasonix-bridge
USER node
ENV BRIDGE_HOST=0.0.0.0 BRIDGE_STORE_URL=sqlite:/var/lib/planasonix-bridge/bridge.db
VOLUME ["/var/lib/planasonix-bridge"]
EXPOSE 8787
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
